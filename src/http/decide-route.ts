/** `POST /decide`: the decision contract (validate -> normalize) -> decide -> response. No business rules here. */
import type { FastifyPluginAsync } from 'fastify'
import { decideBodyValidator, decideRequestSchema, decisionSchema, normalizeDecideBody, toDecideResponse, type DecideBody } from '../contract/index.js'
import { badRequest } from '../errors.js'
import { currentGateway, mayExplain, redactReasons, scopeOf, type Access } from '../gateway/access.js'
import { uuidv7 } from '../ids.js'
import type { DecisionService } from '../service.js'
import { tokenDenial } from '../tokens/answer.js'
import { checkCallerScope, issuerFacts, resolveIdentity } from '../tokens/identity.js'
import type { Guard } from './auth.js'

export interface DecideRouteOptions {
  service: DecisionService
  access: Access
  /** onRequest hooks: the API key check (none when API_KEYS is unset). */
  guard: Guard[]
}

export const decideRoute: FastifyPluginAsync<DecideRouteOptions> = async (app, { service, access, guard }) => {
  app.post<{ Body: DecideBody }>('/decide', {
    schema: {
      summary: 'Decide whether the session may perform the action now',
      description: 'Answers allow, step_up (with an RFC 9470 challenge ready to forward) or deny.',
      tags: ['decisions'],
      body: decideRequestSchema,
      response: {
        200: decisionSchema,
        400: { $ref: 'Error#' },
        401: { $ref: 'Error#' },
        403: { $ref: 'Error#' },
        413: { $ref: 'Error#' },
        415: { $ref: 'Error#' }
      }
    },
    // The contract's own compiled validator, not a second compilation of its schema.
    validatorCompiler: () => decideBodyValidator,
    onRequest: guard
  }, async request => {
    // Identity first: a verified token (or raw claims, from a caller trusted with them), then the caller's scope.
    const { set, gateway } = currentGateway(access)
    const scope = scopeOf(request, gateway)
    const explain = mayExplain(access, scope)
    const { token, ...body } = request.body
    if (token !== undefined && body.claims !== undefined) throw badRequest('token', 'send either token or claims, not both')
    const identity = await resolveIdentity({ token: token === undefined ? undefined : { value: token, field: 'token', scheme: 'Bearer' }, claims: body.claims, tenant: body.tenant, application: body.application }, gateway, scope, access.verifier, set.assurance.clockSkew)
    if (identity.kind === 'refused') {
      const decisionId = uuidv7(access.now())
      request.log.info({ decisionId, event: 'auth.access_denied', decision: 'deny', action: body.action, token: identity.reason }, 'decision')
      return toDecideResponse({ decisionId, policyRevision: set.revision, decision: tokenDenial(identity.status, identity.reason) })
    }
    checkCallerScope(scope, identity.tenant, identity.application)
    const normalized = normalizeDecideBody({ ...body, claims: identity.claims, tenant: identity.tenant, application: identity.application }, set.assurance)
    Object.assign(normalized, issuerFacts(identity))
    const response = toDecideResponse(await service.decide(normalized))
    return explain ? response : redactReasons(response)
  })
}

/**
 * AuthZEN Authorization API 1.0: `POST /access/v1/evaluation`, `POST /access/v1/evaluations`
 * (execute_all, deny_on_first_deny, permit_on_first_permit) and the public
 * `GET /.well-known/authzen-configuration`. The PEP authenticates with its API key
 * (Authorization: Bearer); the user's token travels in `subject.properties.token`.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError } from '../errors.js'
import { currentGateway, scopeOf, type Access } from '../gateway/access.js'
import { toAuthzenAnswer, toDecideBody, withDefaults, type AuthzenAnswer, type AuthzenEvaluations, type AuthzenRequest } from '../gateway/authzen.js'
import { uuidv7 } from '../ids.js'
import type { DecisionService } from '../service.js'
import { tokenDenial } from '../tokens/answer.js'
import { checkCallerScope, issuerFacts, resolveIdentity } from '../tokens/identity.js'
import { decideRequestSchema, normalizeDecideBody } from '../contract/index.js'
import type { Guard } from './auth.js'

export interface AuthzenRouteOptions {
  service: DecisionService
  access: Access
  /** onRequest hooks: the API key check (none when API_KEYS is unset). */
  guard: Guard[]
}

const MAX_EVALUATIONS = 64
const text = { type: 'string', minLength: 1, maxLength: 512 }
const properties = { type: 'object', maxProperties: 64 }
const subject = { type: 'object', required: ['type', 'id'], properties: { type: text, id: decideRequestSchema.properties.subject.properties.id, properties } }
const action = { type: 'object', required: ['name'], properties: { name: decideRequestSchema.properties.action, properties } }
const resource = { type: 'object', required: ['type', 'id'], properties: { type: decideRequestSchema.properties.resource, id: text, properties } }
const context = { type: 'object', maxProperties: 64 }
const evaluationSchema = { type: 'object', required: ['subject', 'action', 'resource'], properties: { subject, action, resource, context } }
const item = { type: 'object', properties: { subject, action, resource, context } }
const evaluationsSchema = {
  type: 'object',
  properties: {
    subject,
    action,
    resource,
    context,
    evaluations: { type: 'array', maxItems: MAX_EVALUATIONS, items: item },
    options: { type: 'object', properties: { evaluations_semantic: { enum: ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] } } }
  }
}
const answerSchema = { description: 'The decision: true to permit; false with context.step_up (what would satisfy it, and the RFC 9470 challenge) or context.reason_admin / reason_user.', type: 'object', required: ['decision'], properties: { decision: { type: 'boolean' }, context: { type: 'object', additionalProperties: true } } }

export const authzenRoutes: FastifyPluginAsync<AuthzenRouteOptions> = async (app, { service, access, guard }) => {
  const evaluate = async (request: FastifyRequest, evaluation: AuthzenRequest, at: string): Promise<AuthzenAnswer> => {
    const { set, gateway } = currentGateway(access)
    const scope = scopeOf(request, gateway)
    const { body, token } = toDecideBody(evaluation, at)
    if (token !== undefined && body.claims !== undefined) throw new ApiError('invalid_request', `${at}subject.properties: send either token or claims, not both`)
    const identity = await resolveIdentity({ token: token === undefined ? undefined : { value: token, field: `${at}subject.properties.token`, scheme: 'Bearer' }, claims: body.claims, tenant: body.tenant, application: body.application }, gateway, scope, access.verifier, set.assurance.clockSkew)
    if (identity.kind === 'refused') return toAuthzenAnswer(uuidv7(access.now()), tokenDenial(identity.status, identity.reason))
    checkCallerScope(scope, identity.tenant, identity.application)
    const normalized = normalizeDecideBody({ ...body, claims: identity.claims, tenant: identity.tenant, application: identity.application }, set.assurance)
    Object.assign(normalized, issuerFacts(identity))
    const { decisionId, decision } = await service.decide(normalized)
    return toAuthzenAnswer(decisionId, decision)
  }
  // AuthZEN asks the PDP to echo the PEP's X-Request-ID.
  const echoRequestId = (request: FastifyRequest, reply: FastifyReply): void => {
    const id = request.headers['x-request-id']
    if (typeof id === 'string' && /^[\x21-\x7e]{1,200}$/.test(id)) reply.header('x-request-id', id)
  }

  app.post<{ Body: AuthzenRequest }>('/access/v1/evaluation', {
    schema: { summary: 'AuthZEN Access Evaluation', operationId: 'authzenEvaluation', tags: ['authzen'], body: evaluationSchema, response: { 200: answerSchema, 400: { $ref: 'Error#' }, 401: { $ref: 'Error#' }, 403: { $ref: 'Error#' } } },
    onRequest: guard
  }, async (request, reply) => {
    echoRequestId(request, reply)
    return evaluate(request, request.body, '')
  })

  app.post<{ Body: AuthzenEvaluations }>('/access/v1/evaluations', {
    schema: {
      summary: 'AuthZEN Access Evaluations (batch)',
      operationId: 'authzenEvaluations',
      tags: ['authzen'],
      body: evaluationsSchema,
      response: { 200: { description: 'One answer per evaluation run (fewer with deny_on_first_deny or permit_on_first_permit), or a single answer when no evaluations were sent.', type: 'object', properties: { decision: { type: 'boolean' }, context: { type: 'object', additionalProperties: true }, evaluations: { type: 'array', items: answerSchema } } }, 400: { $ref: 'Error#' }, 401: { $ref: 'Error#' }, 403: { $ref: 'Error#' } }
    },
    onRequest: guard
  }, async (request, reply) => {
    echoRequestId(request, reply)
    const batch = request.body
    const items = batch.evaluations ?? []
    // No evaluations: the request is a single evaluation, answered as one.
    if (items.length === 0) return evaluate(request, withDefaults(batch, {}, 0), '')
    const semantic = batch.options?.evaluations_semantic ?? 'execute_all'
    const evaluations: AuthzenAnswer[] = []
    for (let i = 0; i < items.length; i++) {
      let answer: AuthzenAnswer
      try {
        answer = await evaluate(request, withDefaults(batch, items[i]!, i), `evaluations[${i}].`)
      } catch (err) {
        if (!(err instanceof ApiError) || err.status >= 500) throw err
        // One bad item does not sink the batch: it is a denial that says why.
        answer = { decision: false, context: { error: { status: err.status, code: err.code, message: err.message } } }
      }
      evaluations.push(answer)
      if (semantic === 'deny_on_first_deny' && !answer.decision) break
      if (semantic === 'permit_on_first_permit' && answer.decision) break
    }
    return { evaluations }
  })

  app.get('/.well-known/authzen-configuration', {
    schema: {
      summary: 'AuthZEN PDP metadata',
      operationId: 'authzenConfiguration',
      tags: ['authzen'],
      security: [],
      response: {
        200: {
          description: 'The PDP identifier and its evaluation endpoints.',
          type: 'object',
          properties: { policy_decision_point: { type: 'string' }, access_evaluation_endpoint: { type: 'string' }, access_evaluations_endpoint: { type: 'string' } }
        }
      }
    }
  }, async request => {
    const base = `${request.protocol}://${request.host}`
    return {
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`
    }
  })
}

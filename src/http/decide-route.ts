/** `POST /decide`: the decision contract (validate -> normalize) -> decide -> response. No business rules here. */
import type { FastifyInstance } from 'fastify'
import { decideBodyValidator, decideRequestSchema, decisionSchema, normalizeDecideBody, toDecideResponse, type DecideBody } from '../contract/index.js'
import type { PolicyHolder } from '../policy/load.js'
import type { DecisionService } from '../service.js'

export function registerDecideRoute (app: FastifyInstance, service: DecisionService, policies: PolicyHolder, guard: unknown[]): void {
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
        413: { $ref: 'Error#' },
        415: { $ref: 'Error#' }
      }
    },
    // The contract's own compiled validator, not a second compilation of its schema.
    validatorCompiler: () => decideBodyValidator,
    onRequest: guard as never
  }, async (request) => {
    const normalized = normalizeDecideBody(request.body, policies.current.assurance)
    return toDecideResponse(await service.decide(normalized))
  })
}

/** `POST /decide`: schema -> normalize -> decide -> response. No business rules here. */
import type { FastifyInstance } from 'fastify'
import type { Decision } from '../engine/decide.js'
import type { PolicyHolder } from '../policy/load.js'
import type { DecisionService } from '../service.js'
import { normalizeDecideBody, type DecideBody } from './normalize.js'
import { decideRequestSchema, decisionSchema } from './schemas.js'

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
    onRequest: guard as never
  }, async (request) => {
    const normalized = normalizeDecideBody(request.body, policies.current.assurance)
    const { decisionId, decision } = await service.decide(normalized)
    return toDecideResponse(decisionId, decision)
  })
}

/** The 200 body of POST /decide (also what `stepup decide --json` prints). */
export function toDecideResponse (decisionId: string, decision: Decision): Record<string, unknown> {
  return {
    decision: decision.decision,
    decisionId,
    required: decision.required,
    challenge: decision.challenge,
    enroll: decision.enroll,
    message: decision.message,
    reasons: decision.reasons,
    session: decision.session,
    reportOnly: decision.reportOnly
  }
}

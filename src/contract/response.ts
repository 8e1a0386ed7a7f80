/** The 200 body of POST /decide (also what `stepup decide --json` prints). */
import type { DecisionResult } from '../service.js'
import type { DecideResponse } from './schemas.js'

/**
 * Picks the public fields in the order of the response schema; the engine's own fields
 * (policies, consumes, learn, trace) stay inside.
 */
export function toDecideResponse ({ decisionId, policyRevision, decision }: DecisionResult): DecideResponse {
  const response: DecideResponse = {
    decision: decision.decision,
    decisionId,
    policyRevision,
    required: decision.required,
    challenge: decision.challenge,
    enroll: decision.enroll,
    message: decision.message,
    reasons: decision.reasons,
    session: decision.session,
    reportOnly: decision.reportOnly
  }
  return response
}

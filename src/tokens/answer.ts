/**
 * The decision for a token that failed verification: the engine's `invalid_token` answer (deny,
 * 401, a reason naming the check), or 503 when the issuer's keys cannot be had. No policy is
 * consulted: a token that does not verify is no session at all.
 */
import { invalidTokenDecision, TOKEN_REASON } from '../engine/challenge.js'
import type { Decision } from '../engine/decide.js'

/** `reason` is "check: what failed", a fixed phrase (never key material). */
export function tokenDenial (status: 401 | 503, reason: string, dpop = false): Decision {
  const colon = reason.indexOf(': ')
  const check = colon === -1 ? 'token' : reason.slice(0, colon)
  const detail = colon === -1 ? reason : reason.slice(colon + 2)
  if (status === 401) return invalidTokenDecision(check, `The access token was refused (${reason}).`, { detail, dpop })
  return {
    decision: 'deny',
    event: 'auth.access_denied',
    challenge: { status: 503 as never },
    message: 'The access token cannot be verified right now: the issuer\'s keys are unavailable. Retry shortly.',
    reasons: [{ policy: TOKEN_REASON, trigger: 'token', outcome: 'deny', detail: reason }],
    session: { aal: 0, factors: [] },
    reportOnly: [],
    policies: []
  }
}

/**
 * The decision for a token that failed verification: `deny` with the RFC 6750 `invalid_token`
 * challenge (401), or 503 when the issuer's keys cannot be had. No policy is consulted: a token
 * that does not verify is no session at all.
 */
import type { Decision } from '../engine/decide.js'
import type { TriggerKind } from '../engine/model.js'

/** The `error_description` is a fixed phrase naming the check: printable ASCII without quotes. */
export function invalidTokenHeader (reason: string): string {
  return `Bearer error="invalid_token", error_description="${reason.replace(/[^\x20-\x7e]|["\\]/g, '')}"`
}

export function tokenDenial (status: 401 | 503, reason: string): Decision {
  return {
    decision: 'deny',
    event: 'auth.access_denied',
    challenge: status === 401 ? { status, wwwAuthenticate: invalidTokenHeader(reason) } : { status: status as never },
    message: status === 401 ? `The token was refused (${reason}).` : 'The token cannot be verified right now: the issuer\'s keys are unavailable.',
    reasons: [{ policy: '(token)', trigger: 'token' as TriggerKind, outcome: 'deny', detail: reason }],
    session: { aal: 0, factors: [] },
    reportOnly: [],
    policies: []
  }
}

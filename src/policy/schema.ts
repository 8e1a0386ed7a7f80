/**
 * The JSON Schema of a policy file. It validates files at load time and is
 * published as `policies/policy.schema.json` so YAML language servers check as operators type.
 * Written with TypeBox: the raw shapes the compiler reads (RawPolicy, RawAssurance) are derived
 * from it, never written a second time.
 */

import { Type, type Static, type TNull, type TObject, type TProperties, type TSchema, type TUnion, type TUnsafe } from '@sinclair/typebox'
import { ACTION_GLOB_PATTERN, ACTION_MAX_LENGTH } from '../engine/actions.js'
import { DURATION_PATTERN } from './duration.js'
import { gatewaySections } from './gateway-schema.js'

const duration = Type.Union([
  Type.Integer({ minimum: 0 }),
  Type.String({ pattern: DURATION_PATTERN })
], { description: 'A duration: a number of seconds, or a number with a unit (30s, 5m, 1h, 1d).' })

/** A `duration` with another description. */
const durationWith = (description: string): typeof duration => ({ ...duration, description })

/** An enum as JSON Schema writes it (`enum`), typed as the union of its values. */
const oneOf = <const T extends string | number>(values: readonly T[], description?: string): TUnsafe<T> =>
  Type.Unsafe<T>({ enum: values, ...(description ? { description } : {}) })

/** An object of any keys whose values all follow `value` (JSON Schema's additionalProperties). */
const mapOf = <V extends TSchema>(value: V, options: Record<string, unknown>): TUnsafe<Record<string, Static<V>>> =>
  Type.Unsafe<Record<string, Static<V>>>({ type: 'object', ...options, additionalProperties: value })

const days = Type.Integer({ minimum: 1, maximum: 400, description: 'A look-back window in days (1-400).' })

export const idRegex = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'
export const listNameRegex = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'

/** `null` (the defaults) or an object of the trigger's parameters. */
const nullableObject = <P extends TProperties>(properties: P, description: string): TUnion<[TNull, TObject<P>]> =>
  Type.Union([Type.Null(), Type.Object(properties, { additionalProperties: false })], { description })

const unknownLocation = Type.Optional(oneOf(['fire', 'ignore'], 'When the request has no location (no ip, a private address, one the database does not place): fire (default, fail closed) or ignore.'))

/** An OAuth scope token (RFC 6749 §3.3). */
const scopeToken = Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' })

const nonEmpty = Type.String({ minLength: 1 })
const fraction = Type.Number({ minimum: 0, maximum: 1 })

const trigger = Type.Object({
  condition: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'A CEL expression that fires the policy when true.' })),
  newDevice: Type.Optional(nullableObject({ days: Type.Optional(days) }, 'The device fingerprint was not seen on an allowed request within `days` (default 30).')),
  newCountry: Type.Optional(nullableObject({ days: Type.Optional(days), unknownLocation }, "The IP's country was not seen on an allowed request within `days` (default 14).")),
  impossibleTravel: Type.Optional(nullableObject({
    maxSpeedKmh: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100000 })),
    minDistanceKm: Type.Optional(Type.Number({ minimum: 0, maximum: 40075 })),
    maxAccuracyKm: Type.Optional(Type.Number({ minimum: 0, maximum: 20000 })),
    unknownLocation
  }, 'Travel from the last allowed location faster than `maxSpeedKmh` (defaults 900, 100, 200).')),
  riskScore: Type.Optional(Type.Object({ atLeast: fraction }, { additionalProperties: false, description: 'The risk score is at least `atLeast`.' })),
  ipList: Type.Optional(Type.Object({
    lists: Type.Array(Type.String({ pattern: listNameRegex }), { minItems: 1, uniqueItems: true })
  }, { additionalProperties: false, description: 'The IP is in one of the named lists (files lists/<name>.txt).' })),
  firstAccess: Type.Optional(Type.Object({
    resource: Type.String({ minLength: 1, maxLength: 200 }),
    days: Type.Optional(days)
  }, { additionalProperties: false, description: 'The first access of this user to `resource` within `days` (default 30).' }))
}, { description: 'One trigger; any one trigger of a policy fires it.', minProperties: 1, maxProperties: 1, additionalProperties: false })

const policy = Type.Object({
  id: Type.String({ pattern: idRegex, description: 'Unique across the folder.' }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  scope: Type.Optional(Type.Object({
    tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    application: Type.Optional(Type.String({ minLength: 1, maxLength: 200 }))
  }, { additionalProperties: false, minProperties: 1 })),
  overrides: Type.Optional(Type.String({ pattern: idRegex, description: 'The id of a policy this one replaces inside its scope.' })),
  actions: Type.Array(Type.String({ maxLength: ACTION_MAX_LENGTH, pattern: ACTION_GLOB_PATTERN }), {
    minItems: 1,
    uniqueItems: true,
    description: 'Action globs: `*` matches one segment, `**` one or more.'
  }),
  when: Type.Optional(Type.Array(trigger, { minItems: 1 })),
  effect: Type.Optional(oneOf(['step_up', 'deny'], 'step_up (default) or deny.')),
  require: Type.Optional(Type.Object({
    aal: Type.Optional(oneOf([1, 2, 3], 'Target authenticator assurance level (default 2).')),
    factors: Type.Optional(Type.Array(nonEmpty, { minItems: 1, uniqueItems: true })),
    maxAge: Type.Optional(durationWith('How long the elevated session stays valid (default 15m); 0 = every time.')),
    scopes: Type.Optional(Type.Array(scopeToken, { minItems: 1, uniqueItems: true, description: 'OAuth scopes the token must hold, every one (its `scope` or `scp` claim).' })),
    bind: Type.Optional(oneOf(['transaction'], 'PSD2 dynamic linking: only a verified token whose authorization_details name the payment in context.transaction satisfies the policy, once (maxAge default 5m).'))
  }, { additionalProperties: false })),
  exemptions: Type.Optional(Type.Object({
    lowValue: Type.Optional(Type.Union([
      Type.Boolean(),
      Type.Object({
        maxAmount: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 30 })),
        maxCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 5 })),
        maxTotal: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 }))
      }, { additionalProperties: false })
    ], { description: 'Low-value payments (RTS Art. 16): at most 30 EUR each, while fewer than 5 payments and at most 100 EUR were exempted since the last SCA. An object may only lower these limits.' })),
    trustedBeneficiary: Type.Optional(Type.Boolean({ description: 'Payees the user trusted in an SCA-authenticated payment (RTS Art. 13).' })),
    tra: Type.Optional(Type.Object({
      maxAmount: Type.Number({ exclusiveMinimum: 0, maximum: 500 }),
      riskScoreBelow: Type.Number({ exclusiveMinimum: 0, maximum: 1 })
    }, { additionalProperties: false, description: 'Transaction risk analysis (RTS Art. 18): at most maxAmount EUR (500 at most) and context.riskScore below riskScoreBelow.' })),
    conversion: Type.Optional(mapOf(Type.Number({ exclusiveMinimum: 0, maximum: 1000000 }), {
      description: 'The EUR value of one unit of another currency (USD: 0.92); payments in a currency not listed get no exemption.',
      propertyNames: { pattern: '^[A-Z]{3}$' }
    }))
  }, { additionalProperties: false, minProperties: 1, description: 'PSD2 exemptions from strong customer authentication (policies with require.bind: transaction). Amounts in EUR.' })),
  lockout: Type.Optional(Type.Object({
    attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    window: Type.Optional(duration)
  }, { additionalProperties: false, description: 'Failed-attempt lockout (RTS Art. 4(3)(d)): after `attempts` failed step-ups within `window`, step-ups are denied (temporarily_locked) until the window passes. Default on bound policies: 5 within 15m.' })),
  message: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
  mode: Type.Optional(oneOf(['enforce', 'report'], 'enforce (default) or report.'))
}, { additionalProperties: false })

const factorClass = Type.Object({
  category: Type.Optional(oneOf(['know', 'have', 'are'], 'Something you know, have or are (default for a new class: have).')),
  amr: Type.Optional(Type.Array(nonEmpty, { minItems: 1, uniqueItems: true })),
  maxAal: Type.Optional(oneOf([1, 2, 3])),
  phishingResistant: Type.Optional(Type.Boolean()),
  multiFactor: Type.Optional(Type.Boolean({ description: 'A have class that verifies the user itself (a passkey): multi-factor on its own.' }))
}, { additionalProperties: false })

const aalValue = oneOf([0, 1, 2, 3])

const acrList = Type.Optional(Type.Array(Type.String({ minLength: 1, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), { minItems: 1 }))

const assurance = Type.Object({
  acr: Type.Optional(mapOf(Type.Union([
    aalValue,
    Type.Object({
      aal: aalValue,
      proves: Type.Optional(Type.Array(nonEmpty, { uniqueItems: true, description: 'Factor classes a session with this acr proves (one of them was used).' }))
    }, { additionalProperties: false })
  ]), { description: 'Extra or replaced acr values: an AAL, or { aal, proves } with the factor classes the value proves.' })),
  factors: Type.Optional(mapOf(factorClass, {
    description: 'Factor classes, merged over the defaults by name. An amr value listed here moves to this class.',
    propertyNames: { pattern: '^[a-z][a-z0-9_]{0,31}$' }
  })),
  userVerification: Type.Optional(Type.Array(nonEmpty, { uniqueItems: true, description: 'amr values that verify the user (a PIN, a biometric) without being a factor class.' })),
  stepUpClaim: Type.Optional(Type.Object({
    claim: Type.String({ minLength: 1, maxLength: 100 }),
    maxAge: duration
  }, { additionalProperties: false, description: 'A boolean claim meaning "stepped up within maxAge" (Descope su); the session then counts as maxAge old. Default: none.' })),
  clockSkew: Type.Optional(duration),
  challengeAcr: Type.Optional(Type.Object({ aal1: acrList, aal2: acrList, aal2PhishingResistant: acrList, aal3: acrList }, { additionalProperties: false })),
  learnFrom: Type.Optional(Type.Object({ aal: Type.Optional(oneOf([1, 2, 3])), maxAge: Type.Optional(duration) }, { additionalProperties: false })),
  riskWeights: Type.Optional(Type.Object({
    newDevice: Type.Optional(fraction),
    newCountry: Type.Optional(fraction),
    impossibleTravel: Type.Optional(fraction),
    ipList: Type.Optional(fraction)
  }, { additionalProperties: false })),
  audit: Type.Optional(Type.Object({
    redactContext: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { uniqueItems: true, description: 'Request context keys that audit records do not keep.' }))
  }, { additionalProperties: false }))
}, { additionalProperties: false })

/** A policy entry as the schema accepts it (derived from the schema: one source). */
export type RawPolicy = Static<typeof policy>
/** The `assurance:` section as the schema accepts it. */
export type RawAssurance = Static<typeof assurance>
/** What compiling reads of a file (the gateway sections have their own reader, src/policy/gateway-config.ts). */
export interface RawFile { policies?: RawPolicy[], assurance?: RawAssurance }

export const policyFileSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://stepup-pdp.dev/schemas/policy.schema.json',
  title: 'stepup-pdp policy file',
  type: 'object',
  additionalProperties: false,
  properties: {
    policies: Type.Array(policy),
    assurance,
    ...gatewaySections
  }
} as const

/**
 * The JSON Schema of a policy file. It validates files at load time and is
 * published as `policies/policy.schema.json` so YAML language servers check as operators type.
 */

import { ACTION_GLOB_PATTERN, ACTION_MAX_LENGTH } from '../engine/actions.js'
import { DURATION_PATTERN } from './duration.js'
import { gatewaySections } from './gateway-schema.js'


const duration = {
  description: 'A duration: a number of seconds, or a number with a unit (30s, 5m, 1h, 1d).',
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: DURATION_PATTERN }
  ]
}

const days = { type: 'integer', minimum: 1, maximum: 400, description: 'A look-back window in days (1-400).' }

export const idRegex = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'
export const listNameRegex = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'

const nullableObject = (properties: Record<string, unknown>, description: string): Record<string, unknown> => ({
  description,
  anyOf: [
    { type: 'null' },
    { type: 'object', additionalProperties: false, properties }
  ]
})

const unknownLocation = {
  enum: ['fire', 'ignore'],
  description: 'When the request has no location (no ip, a private address, one the database does not place): fire (default, fail closed) or ignore.'
}

/** An OAuth scope token (RFC 6749 §3.3). */
const scopeToken = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }

const trigger = {
  type: 'object',
  description: 'One trigger; any one trigger of a policy fires it.',
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
  properties: {
    condition: { type: 'string', minLength: 1, maxLength: 4096, description: 'A CEL expression that fires the policy when true.' },
    newDevice: nullableObject({ days }, 'The device fingerprint was not seen on an allowed request within `days` (default 30).'),
    newCountry: nullableObject({ days, unknownLocation }, "The IP's country was not seen on an allowed request within `days` (default 14)."),
    impossibleTravel: nullableObject({
      maxSpeedKmh: { type: 'number', exclusiveMinimum: 0, maximum: 100000 },
      minDistanceKm: { type: 'number', minimum: 0, maximum: 40075 },
      maxAccuracyKm: { type: 'number', minimum: 0, maximum: 20000 },
      unknownLocation
    }, 'Travel from the last allowed location faster than `maxSpeedKmh` (defaults 900, 100, 200).'),
    riskScore: {
      type: 'object',
      additionalProperties: false,
      required: ['atLeast'],
      properties: { atLeast: { type: 'number', minimum: 0, maximum: 1 } },
      description: 'The risk score is at least `atLeast`.'
    },
    ipList: {
      type: 'object',
      additionalProperties: false,
      required: ['lists'],
      properties: {
        lists: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: listNameRegex } }
      },
      description: 'The IP is in one of the named lists (files lists/<name>.txt).'
    },
    firstAccess: {
      type: 'object',
      additionalProperties: false,
      required: ['resource'],
      properties: { resource: { type: 'string', minLength: 1, maxLength: 200 }, days },
      description: 'The first access of this user to `resource` within `days` (default 30).'
    }
  }
}

const policy = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'actions'],
  properties: {
    id: { type: 'string', pattern: idRegex, description: 'Unique across the folder.' },
    description: { type: 'string', maxLength: 2000 },
    scope: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        tenant: { type: 'string', minLength: 1, maxLength: 200 },
        application: { type: 'string', minLength: 1, maxLength: 200 }
      }
    },
    overrides: { type: 'string', pattern: idRegex, description: 'The id of a policy this one replaces inside its scope.' },
    actions: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', maxLength: ACTION_MAX_LENGTH, pattern: ACTION_GLOB_PATTERN },
      description: 'Action globs: `*` matches one segment, `**` one or more.'
    },
    when: { type: 'array', minItems: 1, items: trigger },
    effect: { enum: ['step_up', 'deny'], description: 'step_up (default) or deny.' },
    require: {
      type: 'object',
      additionalProperties: false,
      properties: {
        aal: { enum: [1, 2, 3], description: 'Target authenticator assurance level (default 2).' },
        factors: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', minLength: 1 } },
        maxAge: { ...duration, description: 'How long the elevated session stays valid (default 15m); 0 = every time.' },
        scopes: { type: 'array', minItems: 1, uniqueItems: true, items: scopeToken, description: 'OAuth scopes the token must hold, every one (its `scope` or `scp` claim).' },
        bind: { enum: ['transaction'], description: 'PSD2 dynamic linking: only a verified token whose authorization_details name the payment in context.transaction satisfies the policy, once (maxAge default 5m).' }
      }
    },
    exemptions: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      description: 'PSD2 exemptions from strong customer authentication (policies with require.bind: transaction). Amounts in EUR.',
      properties: {
        lowValue: {
          description: 'Low-value payments (RTS Art. 16): at most 30 EUR each, while fewer than 5 payments and at most 100 EUR were exempted since the last SCA. An object may only lower these limits.',
          anyOf: [
            { type: 'boolean' },
            {
              type: 'object',
              additionalProperties: false,
              properties: {
                maxAmount: { type: 'number', exclusiveMinimum: 0, maximum: 30 },
                maxCount: { type: 'integer', minimum: 1, maximum: 5 },
                maxTotal: { type: 'number', exclusiveMinimum: 0, maximum: 100 }
              }
            }
          ]
        },
        trustedBeneficiary: { type: 'boolean', description: 'Payees the user trusted in an SCA-authenticated payment (RTS Art. 13).' },
        tra: {
          type: 'object',
          additionalProperties: false,
          required: ['maxAmount', 'riskScoreBelow'],
          description: 'Transaction risk analysis (RTS Art. 18): at most maxAmount EUR (500 at most) and context.riskScore below riskScoreBelow.',
          properties: {
            maxAmount: { type: 'number', exclusiveMinimum: 0, maximum: 500 },
            riskScoreBelow: { type: 'number', exclusiveMinimum: 0, maximum: 1 }
          }
        },
        conversion: {
          type: 'object',
          description: 'The EUR value of one unit of another currency (USD: 0.92); payments in a currency not listed get no exemption.',
          propertyNames: { pattern: '^[A-Z]{3}$' },
          additionalProperties: { type: 'number', exclusiveMinimum: 0, maximum: 1000000 }
        }
      }
    },
    lockout: {
      type: 'object',
      additionalProperties: false,
      description: 'Failed-attempt lockout (RTS Art. 4(3)(d)): after `attempts` failed step-ups within `window`, step-ups are denied (temporarily_locked) until the window passes. Default on bound policies: 5 within 15m.',
      properties: {
        attempts: { type: 'integer', minimum: 1, maximum: 20 },
        window: duration
      }
    },
    message: { type: 'string', minLength: 1, maxLength: 1000 },
    mode: { enum: ['enforce', 'report'], description: 'enforce (default) or report.' }
  }
}

const factorClass = {
  type: 'object',
  additionalProperties: false,
  properties: {
    category: { enum: ['know', 'have', 'are'], description: 'Something you know, have or are (default for a new class: have).' },
    amr: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', minLength: 1 } },
    maxAal: { enum: [1, 2, 3] },
    phishingResistant: { type: 'boolean' },
    multiFactor: { type: 'boolean', description: 'A have class that verifies the user itself (a passkey): multi-factor on its own.' }
  }
}

const aalValue = { enum: [0, 1, 2, 3] }

const acrList = { type: 'array', minItems: 1, items: { type: 'string', minLength: 1, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' } }

const assurance = {
  type: 'object',
  additionalProperties: false,
  properties: {
    acr: {
      type: 'object',
      description: 'Extra or replaced acr values: an AAL, or { aal, proves } with the factor classes the value proves.',
      additionalProperties: {
        anyOf: [
          aalValue,
          {
            type: 'object',
            additionalProperties: false,
            required: ['aal'],
            properties: {
              aal: aalValue,
              proves: { type: 'array', uniqueItems: true, items: { type: 'string', minLength: 1 }, description: 'Factor classes a session with this acr proves (one of them was used).' }
            }
          }
        ]
      }
    },
    factors: {
      type: 'object',
      description: 'Factor classes, merged over the defaults by name. An amr value listed here moves to this class.',
      propertyNames: { pattern: '^[a-z][a-z0-9_]{0,31}$' },
      additionalProperties: factorClass
    },
    userVerification: { type: 'array', uniqueItems: true, items: { type: 'string', minLength: 1 }, description: 'amr values that verify the user (a PIN, a biometric) without being a factor class.' },
    stepUpClaim: {
      type: 'object',
      additionalProperties: false,
      required: ['claim', 'maxAge'],
      properties: {
        claim: { type: 'string', minLength: 1, maxLength: 100 },
        maxAge: duration
      },
      description: 'A boolean claim meaning "stepped up within maxAge" (Descope su); the session then counts as maxAge old. Default: none.'
    },
    clockSkew: duration,
    challengeAcr: {
      type: 'object',
      additionalProperties: false,
      properties: { aal1: acrList, aal2: acrList, aal2PhishingResistant: acrList, aal3: acrList }
    },
    learnFrom: {
      type: 'object',
      additionalProperties: false,
      properties: { aal: { enum: [1, 2, 3] }, maxAge: duration }
    },
    riskWeights: {
      type: 'object',
      additionalProperties: false,
      properties: {
        newDevice: { type: 'number', minimum: 0, maximum: 1 },
        newCountry: { type: 'number', minimum: 0, maximum: 1 },
        impossibleTravel: { type: 'number', minimum: 0, maximum: 1 },
        ipList: { type: 'number', minimum: 0, maximum: 1 }
      }
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        redactContext: { type: 'array', uniqueItems: true, description: 'Request context keys that audit records do not keep.', items: { type: 'string', minLength: 1, maxLength: 128 } }
      }
    }
  }
}

export const policyFileSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://stepup-pdp.dev/schemas/policy.schema.json',
  title: 'stepup-pdp policy file',
  type: 'object',
  additionalProperties: false,
  properties: {
    policies: { type: 'array', items: policy },
    assurance,
    ...gatewaySections
  }
} as const

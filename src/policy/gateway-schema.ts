/**
 * The JSON Schema of the `issuers:`, `callers:` and `routes:` sections of a policy file (token
 * verification, scoped callers, gateway routes). Merged into the policy file schema.
 */
import { ACTION_MAX_LENGTH, ACTION_PATTERN } from '../engine/actions.js'
import { ALLOWED_ALGORITHMS } from '../tokens/issuer.js'
import { DURATION_PATTERN } from './duration.js'

const duration = { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: DURATION_PATTERN }] }
const url = { type: 'string', minLength: 8, maxLength: 2000, pattern: '^https?://[^\\s]+$' }
const name = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }
const claimName = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:/-]+$' }

const claimSource = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: { claim: claimName, value: name },
  description: '{ claim: <name> } to read it from the token, or { value: <fixed> }.'
}

const issuer = {
  type: 'object',
  additionalProperties: false,
  required: ['issuer', 'audience'],
  properties: {
    issuer: { ...url, description: 'Must equal the token\'s `iss` exactly; OIDC discovery starts here unless jwksUri is given.' },
    audience: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 2000 } },
    jwksUri: url,
    algorithms: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...ALLOWED_ALGORITHMS] } },
    tenant: claimSource,
    application: claimSource,
    acr: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['aal'],
        properties: { aal: { enum: [0, 1, 2, 3] }, proves: { type: 'array', uniqueItems: true, items: { type: 'string', minLength: 1 } } }
      }
    },
    stepUpClaim: {
      type: 'object',
      additionalProperties: false,
      required: ['claim', 'maxAge'],
      properties: { claim: claimName, maxAge: duration }
    },
    introspection: {
      type: 'object',
      additionalProperties: false,
      required: ['endpoint', 'clientId', 'clientSecretEnv'],
      properties: { endpoint: url, clientId: name, clientSecretEnv: { type: 'string', pattern: '^[A-Z_][A-Z0-9_]{0,99}$' } }
    }
  }
}

const caller = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'The name of an API_KEYS entry (name:key).' },
    tenants: { type: 'array', uniqueItems: true, items: name },
    applications: { type: 'array', uniqueItems: true, items: name },
    trustClaims: { type: 'boolean' },
    explain: { type: 'boolean', description: 'May it read the figures of risk reasons (locations, distances)?' }
  }
}

const source = { type: 'string', pattern: '^(params|query|header)\\.[A-Za-z0-9_.-]{1,100}$' }

const route = {
  type: 'object',
  additionalProperties: false,
  required: ['match', 'action'],
  properties: {
    match: {
      type: 'object',
      additionalProperties: false,
      required: ['path'],
      properties: {
        methods: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] } },
        host: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$' },
        path: { type: 'string', minLength: 1, maxLength: 1000, pattern: '^/' }
      }
    },
    action: { type: 'string', minLength: 1, maxLength: ACTION_MAX_LENGTH, pattern: ACTION_PATTERN },
    resource: name,
    application: name,
    context: { type: 'object', maxProperties: 32, additionalProperties: source }
  }
}

export const gatewaySections = {
  issuers: { type: 'array', items: issuer, description: 'Token issuers whose tokens the PDP verifies.' },
  callers: { type: 'array', items: caller, description: 'What each named API key may ask about.' },
  routes: { type: 'array', items: route, description: 'Gateway requests (method, host, path) mapped to actions.' }
}

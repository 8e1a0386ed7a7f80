/**
 * Reading a `/decide` body from a file for `stepup decide`: the same JSON Schema the HTTP route
 * validates with (and the same `ip` format), then the same normalization, so a body the CLI
 * accepts is one POST /decide accepts. Errors name the field, as the API's 400s do.
 */
import { isIP } from 'node:net'
import { Ajv, type ErrorObject } from 'ajv'
import { ApiError } from '../errors.js'
import type { Assurance, DecisionRequest } from '../engine/model.js'
import { normalizeDecideBody, type DecideBody } from '../http/normalize.js'
import { decideRequestSchema } from '../http/schemas.js'
import { UsageError } from './io.js'

const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false })
ajv.addFormat('ip', (s: string) => isIP(s) !== 0)
const validateBody = ajv.compile<DecideBody>(decideRequestSchema)

const fieldOf = (e: ErrorObject): string => {
  const path = e.instancePath.slice(1).split('/').filter(Boolean)
    .map(s => (/^\d+$/.test(s) ? `[${s}]` : `.${s.replace(/~1/g, '/').replace(/~0/g, '~')}`)).join('').replace(/^\./, '')
  const join = (name: string): string => (path === '' ? name : `${path}.${name}`)
  if (e.keyword === 'required') return join(String(e.params.missingProperty))
  if (e.keyword === 'additionalProperties') return join(String(e.params.additionalProperty))
  return path === '' ? 'body' : path
}

const problemOf = (e: ErrorObject): string => {
  switch (e.keyword) {
    case 'required': return 'is required'
    case 'additionalProperties': return 'unknown field'
    case 'format': return e.params.format === 'ip' ? 'must be an IPv4 or IPv6 address' : `must be a valid ${String(e.params.format)}`
    case 'pattern': return e.instancePath === '/action'
      ? 'must be 1-200 characters of A-Z a-z 0-9 . : / - with non-empty segments between dots'
      : `must match ${String(e.params.pattern)}`
    case 'type': return `must be ${e.params.type === 'object' ? 'an object' : e.params.type === 'array' ? 'an array' : `a ${String(e.params.type)}`}`
    default: return e.message ?? e.keyword
  }
}

/** Parses and validates a body; throws a UsageError naming the field. */
export function parseDecideInput (text: string, source: string, assurance: Assurance): { body: DecideBody, request: DecisionRequest } {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${source}: not valid JSON (${(err as Error).message.split('\n')[0]})`)
  }
  if (!validateBody(body)) {
    const e = validateBody.errors![0]!
    throw new UsageError(`${source}: ${fieldOf(e)}: ${problemOf(e)}`)
  }
  try {
    return { body, request: normalizeDecideBody(body, assurance) }
  } catch (err) {
    if (err instanceof ApiError) throw new UsageError(`${source}: ${err.message}`)
    throw err
  }
}

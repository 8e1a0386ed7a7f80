/**
 * Reading a `/decide` body from a file for `stepup decide`: the same JSON Schema the HTTP route
 * validates with (and the same `ip` format), then the same normalization, so a body the CLI
 * accepts is one POST /decide accepts. Errors name the field, as the API's 400s do.
 */
import { Ajv } from 'ajv'
import { ApiError } from '../errors.js'
import type { Assurance, DecisionRequest } from '../engine/model.js'
import { normalizeDecideBody, type DecideBody } from '../http/normalize.js'
import { decideRequestSchema } from '../http/schemas.js'
import { addIpFormat, describeIssue } from '../http/validation.js'
import { UsageError } from './io.js'

const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false })
addIpFormat(ajv)
const validateBody = ajv.compile<DecideBody>(decideRequestSchema)

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
    throw new UsageError(`${source}: ${describeIssue(e)}`)
  }
  try {
    return { body, request: normalizeDecideBody(body, assurance) }
  } catch (err) {
    if (err instanceof ApiError) throw new UsageError(`${source}: ${err.message}`)
    throw err
  }
}

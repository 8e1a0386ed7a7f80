/**
 * Reading a `/decide` body from a file for `stepup decide`: the decision contract's validator
 * and normalizer (src/contract), so a body the CLI accepts is one POST /decide accepts. Errors
 * name the field, as the API's 400s do.
 */
import { ApiError } from '../errors.js'
import type { Assurance, DecisionRequest } from '../engine/model.js'
import { parseDecideRequest } from '../contract/index.js'
import { UsageError } from './io.js'

/** Parses and validates a body; throws a UsageError naming the field. */
export function parseDecideInput (text: string, source: string, assurance: Assurance): DecisionRequest {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${source}: not valid JSON (${(err as Error).message.split('\n')[0]})`)
  }
  try {
    return parseDecideRequest(body, assurance)
  } catch (err) {
    if (err instanceof ApiError) throw new UsageError(`${source}: ${err.message}`)
    throw err
  }
}

/**
 * The decision-request contract: one schema, one validator, one normalizer and one response
 * mapping, used alike by the HTTP route, `stepup decide`, `stepup test` and the benchmark.
 */
import type { Assurance, DecisionRequest } from '../engine/model.js'
import { normalizeDecideBody } from './normalize.js'
import { validateDecideBody } from './validation.js'

export { decideRequestSchema, decisionSchema, type DecideBody, type DecideResponse } from './schemas.js'
export { normalizeDecideBody, hashDevice } from './normalize.js'
export { AJV_OPTIONS, addIpFormat, decideBodyValidator, describeIssue, isClientIp, validateDecideBody, type ValidationIssue } from './validation.js'
export { toDecideResponse } from './response.js'

/** Validates a body and normalizes it into the engine's request; throws the route's `invalid_request` error. */
export function parseDecideRequest (body: unknown, assurance: Assurance): DecisionRequest {
  return normalizeDecideBody(validateDecideBody(body), assurance)
}

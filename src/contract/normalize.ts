/**
 * Turns a schema-valid `/decide` body into the engine's request: resolves the subject,
 * checks what a schema cannot say, and hashes the device fingerprint.
 */
import { badRequest } from '../errors.js'
import { sha256, subjectSalt } from '../ids.js'
import type { Assurance, DecisionRequest } from '../engine/model.js'
import type { DecideBody } from './schemas.js'
import { parseTransaction } from './transaction.js'
import { validateTransaction } from './validation.js'

const MAX_CONTEXT_DEPTH = 4
/** Real tokens nest a few levels (cnf, authorization_details, address); conditions read claims recursively. */
const MAX_CLAIMS_DEPTH = 8

/**
 * Is `value` nested deeper than `max` levels? Iterative, and it stops at the first path that
 * goes too deep: a body nested 10,000 levels must get a 400, not overflow the stack (a 500).
 */
export function deeperThan (value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    if (depth + 1 > max) return true
    for (const child of Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
    }
  }
  return false
}

/**
 * The device id stored and logged: a digest of the fingerprint salted with the tenant and
 * subject, so one user's ids cannot be looked up in a table built for everyone.
 */
export const hashDevice = (fingerprint: string, tenant: string | undefined, subject: string): string =>
  sha256(`${subjectSalt(tenant, subject)}\u0000${fingerprint}`, 'base64url').slice(0, 22)

export function normalizeDecideBody (body: DecideBody, assurance: Assurance): DecisionRequest {
  if (body.token !== undefined) throw badRequest('token', 'only the service verifies tokens; send claims here')
  const claims = body.claims ?? {}
  const fromSubject = body.subject?.id
  const fromClaims = typeof claims.sub === 'string' ? claims.sub : undefined
  if (fromSubject === undefined && fromClaims === undefined) throw badRequest('subject.id', 'required (or claims.sub)')
  if (fromSubject !== undefined && fromClaims !== undefined && fromSubject !== fromClaims) {
    throw badRequest('subject.id', 'differs from claims.sub; they must name the same user')
  }
  const enrolled = body.subject?.enrolledFactors
  enrolled?.forEach((name, i) => {
    if (!assurance.factorByName.has(name)) {
      throw badRequest(`subject.enrolledFactors[${i}]`, `unknown factor class "${name}"; known: ${assurance.factors.map(f => f.name).join(', ')}`)
    }
  })
  for (const name of ['auth_time', 'iat', 'exp'] as const) {
    const v = claims[name]
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) throw badRequest(`claims.${name}`, 'must be a number of seconds since the epoch')
  }
  if (deeperThan(claims, MAX_CLAIMS_DEPTH)) throw badRequest('claims', `nesting deeper than ${MAX_CLAIMS_DEPTH} levels`)
  const context = body.context ?? {}
  if (deeperThan(context, MAX_CONTEXT_DEPTH)) throw badRequest('context', `nesting deeper than ${MAX_CONTEXT_DEPTH} levels`)
  const subjectId = (fromSubject ?? fromClaims)!
  // Validated again: AuthZEN and gateway requests reach here without the request schema.
  const transaction = context.transaction === undefined ? undefined : parseTransaction(validateTransaction(context.transaction), body.tenant, subjectId)
  return {
    action: body.action,
    tenant: body.tenant,
    application: body.application,
    subjectId,
    enrolledFactors: enrolled,
    claims,
    ip: body.ip,
    deviceId: body.device?.fingerprint === undefined ? undefined : hashDevice(body.device.fingerprint, body.tenant, subjectId),
    resource: body.resource,
    context,
    ...(transaction ? { transaction } : {})
  }
}

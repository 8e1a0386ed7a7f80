/**
 * What the routes that decide share about access: the token verifier, the current gateway
 * configuration (issuer keys fetched as soon as a set is seen), and the caller's scope.
 */
import type { FastifyRequest } from 'fastify'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { callerOf } from '../http/auth.js'
import { gatewayConfigOf, type CallerScope, type GatewayConfig } from '../policy/gateway-config.js'
import type { PolicyHolder } from '../policy/load.js'
import type { TokenVerifier } from '../tokens/verify.js'

export interface Access {
  verifier: TokenVerifier
  policies: PolicyHolder
  /** API_KEYS is set: callers are identified, and only `explain: true` ones read figures. */
  keyed: boolean
  now: () => number
}

const prefetched = new WeakSet<CompiledPolicySet>()

export function currentGateway (access: Access): { set: CompiledPolicySet, gateway: GatewayConfig } {
  const set = access.policies.current
  const gateway = gatewayConfigOf(set)
  if (!prefetched.has(set)) {
    prefetched.add(set)
    access.verifier.prefetch(gateway.issuers)
  }
  return { set, gateway }
}

/** The `callers:` entry of the request's caller; an unnamed or unlisted key has no scope. */
export function scopeOf (request: FastifyRequest, gateway: GatewayConfig): CallerScope | undefined {
  const name = callerOf(request)?.name
  return name === undefined ? undefined : gateway.callers.get(name)
}

/**
 * Whether the caller may read the figures and details of reasons (locations, distances): every
 * caller of a loopback-only service without keys, else only callers with `explain: true`.
 */
export const mayExplain = (access: Access, scope: CallerScope | undefined): boolean => !access.keyed || scope?.explain === true

/** A /decide answer for a caller that may not explain: each reason keeps its policy, trigger and outcome. */
export function redactReasons (response: Record<string, unknown>): Record<string, unknown> {
  const reasons = response.reasons as Array<{ policy: string, trigger: string, outcome: string }>
  return { ...response, reasons: reasons.map(({ policy, trigger, outcome }) => ({ policy, trigger, outcome })) }
}

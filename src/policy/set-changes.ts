/**
 * What a reload changes: policy ids added, removed and changed (by a digest of each compiled
 * policy, its position excluded), and files that held policies and now hold none. The removal
 * guard refuses a reload that removes or empties, unless the operator confirmed it.
 */
import { createHash } from 'node:crypto'
import type { Policy } from '../engine/model.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { gatewayConfigOf } from './gateway-config.js'

export interface SetChanges {
  added: string[]
  removed: string[]
  changed: string[]
  /** Files that held policies before and still exist, holding none now (a truncated write looks so). */
  emptied: string[]
  /**
   * Issuers, callers and routes the reload drops (`issuer <iss>`, `caller <name>`, `route <methods> <host><path>`).
   * Each widens access: without issuers raw claims are trusted again, without a caller entry its
   * tenant limits go, without a route its requests fall to `http.<method>`.
   */
  gatewayRemoved: string[]
}

const digests = new WeakMap<Policy, string>()

/** A digest of what the policy decides (its file and line excluded: moving it changes nothing). */
export function policyDigest (policy: Policy): string {
  let digest = digests.get(policy)
  if (digest === undefined) {
    const { file: _file, line: _line, triggers, ...rest } = policy
    const plain = { ...rest, triggers: triggers.map(t => t.kind === 'condition' ? { kind: 'condition', source: t.program.source } : t) }
    digest = createHash('sha256').update(JSON.stringify(plain)).digest('hex').slice(0, 16)
    digests.set(policy, digest)
  }
  return digest
}

/**
 * Records a digest computed elsewhere for this policy object: the loading worker hashes its
 * policies and the set rebuilt from them here keeps those digests, so that comparing a reload
 * with the serving set does not hash 10,000 policies on the serving thread (~200 ms).
 */
export function rememberDigest (policy: Policy, digest: string): void {
  digests.set(policy, digest)
}

export function setChanges (before: CompiledPolicySet, after: CompiledPolicySet, filesAfter: readonly string[]): SetChanges {
  const old = new Map(before.policies.map(p => [p.id, p]))
  const next = new Map(after.policies.map(p => [p.id, p]))
  const added = [...next.keys()].filter(id => !old.has(id)).sort()
  const removed = [...old.keys()].filter(id => !next.has(id)).sort()
  const changed = [...next.keys()].filter(id => old.has(id) && policyDigest(old.get(id)!) !== policyDigest(next.get(id)!)).sort()
  const holdingAfter = new Set(after.policies.map(p => p.file))
  const present = new Set(filesAfter)
  const emptied = [...new Set(before.policies.map(p => p.file))].filter(f => present.has(f) && !holdingAfter.has(f)).sort()
  return { added, removed, changed, emptied, gatewayRemoved: gatewayRemovals(before, after) }
}

function gatewayRemovals (before: CompiledPolicySet, after: CompiledPolicySet): string[] {
  const a = gatewayConfigOf(before)
  const b = gatewayConfigOf(after)
  const routeKey = (r: (typeof a.routeSources)[number]): string => `route ${(r.match.methods ?? ['*']).join(',')} ${r.match.host ?? ''}${r.match.path}`
  const issuersAfter = new Set(b.issuers.map(i => i.issuer))
  const routesAfter = new Set(b.routeSources.map(routeKey))
  return [
    ...a.issuers.filter(i => !issuersAfter.has(i.issuer)).map(i => `issuer ${i.issuer}`),
    ...[...a.callers.keys()].filter(name => !b.callers.has(name)).map(name => `caller ${name}`),
    ...a.routeSources.map(routeKey).filter(k => !routesAfter.has(k))
  ].sort()
}

/**
 * A compiled policy set in the form that crosses threads (structured clone): every compiled
 * part except the CEL programs, which are functions and travel as their source. `fromPortable`
 * compiles them again on the receiving thread, from a cache shared by every load, yielding to
 * the event loop every few milliseconds so that no request waits for it. The learning tables
 * (plain data) are built in the worker; only the action index is built on the receiving thread,
 * in the same slices.
 */
import { LRUCache } from 'lru-cache'
import type { PolicyProblem } from '../errors.js'
import type { Learning, LearningRules } from '../engine/learning.js'
import type { Assurance, ConditionProgram, Policy, Trigger } from '../engine/model.js'
import { PolicySetBuilder, type CompiledPolicySet } from '../engine/policy-set.js'
import { compileCondition } from './cel.js'
import { attachGatewayConfig, fromPortableGateway, gatewayConfigOf, toPortableGateway, type PortableGatewayConfig } from './gateway-config.js'
import { compileIpLists } from './iplists.js'
import { policyDigest, rememberDigest } from './set-changes.js'
import type { ListSource, PolicySource, ReadLimits } from './source.js'

export type PortableTrigger = Exclude<Trigger, { kind: 'condition' }> | { kind: 'condition', source: string }
/** `digest`: the policy's `policyDigest`, computed in the worker. */
export type PortablePolicy = Omit<Policy, 'triggers'> & { triggers: PortableTrigger[], digest?: string }

export interface PortableSet {
  policies: PortablePolicy[]
  assurance: Assurance
  lists: ListSource[]
  hash: string
  /** The learning tables, built in the worker (plain data): the main thread only looks them up. */
  learning: { shared: LearningRules, tenants: Array<[string, LearningRules]>, retentionDays: number }
  /** issuers:, callers: and routes: (the route table is rebuilt on the receiving thread). */
  gateway: PortableGatewayConfig
}

/**
 * The worker answers a load with `done` (problems, and the set without its policies); the main
 * thread then pulls the policies in chunks, one message each, so that deserializing them never
 * holds its event loop for long (10,000 policies in one message cost it ~200 ms).
 */
export type WorkerReply = { id: number } & (
  | { type: 'progress', file: string }
  | { type: 'done', problems: PolicyProblem[], files: string[], replaced: boolean, set?: Omit<PortableSet, 'policies'> & { count: number } }
  | { type: 'chunk', policies: PortablePolicy[] }
  | { type: 'failed', message: string }
)

export type WorkerRequest =
  /** A folder (`dir`), with one file replaced or added (`replace`), or that file alone. */
  | { type: 'load', id: number, dir?: string, replace?: PolicySource, limits: ReadLimits }
  | { type: 'chunk', id: number, from: number, to: number }
  | { type: 'release', id: number }

export function toPortable (set: CompiledPolicySet, lists: ListSource[]): PortableSet {
  return {
    policies: set.policies.map(p => ({
      ...p,
      triggers: p.triggers.map(t => t.kind === 'condition' ? { kind: 'condition', source: t.program.source } : t),
      digest: policyDigest(p)
    })),
    assurance: set.assurance,
    lists,
    hash: set.hash,
    learning: {
      shared: set.learning.forTenant(undefined),
      tenants: [...new Set(set.policies.map(p => p.scope.tenant).filter((t): t is string => t !== undefined))].map(t => [t, set.learning.forTenant(t)]),
      retentionDays: set.learning.retentionDays
    },
    gateway: toPortableGateway(gatewayConfigOf(set))
  }
}

function learningFrom (portable: PortableSet['learning']): Learning {
  const tables = new Map(portable.tenants)
  return {
    forTenant: tenant => (tenant !== undefined ? tables.get(tenant) : undefined) ?? portable.shared,
    retentionDays: portable.retentionDays
  }
}

const programs = new LRUCache<string, ConditionProgram>({ max: 20_000 })

const programFor = (source: string): ConditionProgram => {
  let program = programs.get(source)
  if (program === undefined) {
    // The worker compiled it already: it cannot fail here.
    program = compileCondition(source)
    programs.set(source, program)
  }
  return program
}

const SLICE_MS = 4
/** Policies indexed between two looks at the clock (a few tens of microseconds). */
const INDEX_BATCH = 50
const yieldToLoop = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

/** Rebuilds the set on this thread in slices of at most a few milliseconds. */
export async function fromPortable (portable: PortableSet): Promise<CompiledPolicySet> {
  const policies: Policy[] = []
  let slice = performance.now()
  for (const { digest, ...p } of portable.policies) {
    const policy: Policy = { ...p, triggers: p.triggers.map(t => t.kind === 'condition' ? { kind: 'condition', program: programFor(t.source) } : t) }
    if (digest !== undefined) rememberDigest(policy, digest)
    policies.push(policy)
    if (performance.now() - slice > SLICE_MS) { await yieldToLoop(); slice = performance.now() }
  }
  await yieldToLoop()
  const ipLists = compileIpLists(portable.lists, [])
  await yieldToLoop()
  // The action index too (~25 ms for 10,000 policies in one piece): a batch at a time, same slices.
  const builder = new PolicySetBuilder(policies)
  slice = performance.now()
  while (builder.step(INDEX_BATCH)) {
    if (performance.now() - slice > SLICE_MS) { await yieldToLoop(); slice = performance.now() }
  }
  await yieldToLoop()
  const set = builder.finish(portable.assurance, ipLists, portable.hash, learningFrom(portable.learning))
  attachGatewayConfig(set, fromPortableGateway(portable.gateway))
  return set
}

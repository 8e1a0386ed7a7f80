/**
 * A compiled policy set: policies indexed by scope and action, the assurance tables, and
 * the IP lists. Building the plan for a request costs the depth of its action, whatever
 * the number of unrelated policies.
 */
import { LRUCache } from 'lru-cache'
import { ActionIndex } from './actions.js'
import type { Learning } from './learning.js'
import type { Assurance, DecisionRequest, Policy, SignalNeeds } from './model.js'

export interface IpListMatcher {
  /** Names of the lists that hold the address. */
  lookup: (ip: string) => string[]
  readonly names: readonly string[]
}

export interface Plan {
  /** Enforced policies that apply, after overrides. */
  enforced: Policy[]
  /** Report-only policies that apply. */
  report: Policy[]
  /** Policies that match the request but are replaced by an override, with the id of the winner. */
  overridden: Array<{ policy: Policy, by: string }>
  needs: SignalNeeds & { onceOnly: boolean, psd2?: Psd2Needs }
}

/** What PSD2 state the applying policies read (undefined when none is a payment or lockout policy). */
export interface Psd2Needs {
  /** A bound policy applies: the linked SCA's state and the exemption counters. */
  bound: boolean
  /** An exemption for trusted beneficiaries applies. */
  payee: boolean
  /** The widest lockout window of the applying policies (0 = none). */
  lockoutWindow: number
}

export interface CompiledPolicySet {
  policies: readonly Policy[]
  assurance: Assurance
  ipLists: IpListMatcher
  /** A digest of the sources, to tell sets apart. */
  hash: string
  /** The revision decisions and operators name the set by: `sha256:` and the first 16 hex digits of the digest. */
  revision: string
  /**
   * WWW-Authenticate values by requirement key: a header depends only on the policies' message
   * and requirement, so each is built once per set (bounded; a reload starts a new set).
   */
  challengeHeaders: LRUCache<string, string>
  learning: Learning
  plan: (request: Pick<DecisionRequest, 'tenant' | 'application' | 'action'>) => Plan
}

const scopeKey = (tenant: string | undefined, application: string | undefined): string =>
  tenant === undefined
    ? (application === undefined ? 'g' : `a\u0000${application}`)
    : application === undefined ? `t\u0000${tenant}` : `ta\u0000${tenant}\u0000${application}`

const PLAN_CACHE_LIMIT = 50_000
const CHALLENGE_CACHE_LIMIT = 10_000

export function buildPolicySet (policies: Policy[], assurance: Assurance, ipLists: IpListMatcher, hash: string, learning: Learning): CompiledPolicySet {
  const builder = new PolicySetBuilder(policies)
  while (builder.step(Infinity)) { /* one step indexes them all */ }
  return builder.finish(assurance, ipLists, hash, learning)
}

/**
 * Builds a set a few policies at a time, so that a caller on a busy thread can index a large
 * set between other work (`step` until it returns false, then `finish`); `buildPolicySet` is
 * the same build in one step. The engine sets no timer: when to pause is the caller's choice.
 */
export class PolicySetBuilder {
  private readonly byScope = new Map<string, ActionIndex<Policy>>()
  private readonly order = new Map<Policy, number>()
  private next = 0

  constructor (private readonly policies: Policy[]) {}

  /** Indexes up to `count` more policies (in order); false once every policy is indexed. */
  step (count: number): boolean {
    const end = Math.min(this.policies.length, this.next + count)
    for (; this.next < end; this.next++) {
      const policy = this.policies[this.next]!
      const key = scopeKey(policy.scope.tenant, policy.scope.application)
      let index = this.byScope.get(key)
      if (!index) { index = new ActionIndex(); this.byScope.set(key, index) }
      for (const pattern of policy.actions) index.add(pattern, policy)
      this.order.set(policy, this.next)
    }
    return this.next < this.policies.length
  }

  finish (assurance: Assurance, ipLists: IpListMatcher, hash: string, learning: Learning): CompiledPolicySet {
    if (this.next < this.policies.length) throw new Error('PolicySetBuilder.finish before every policy is indexed')
    return assemble({ policies: this.policies, byScope: this.byScope, order: this.order, assurance, ipLists, hash, learning })
  }
}

interface SetParts {
  policies: Policy[]
  /** The action index of each scope. */
  byScope: Map<string, ActionIndex<Policy>>
  /** Each policy's place in the folder: plans list policies in this order. */
  order: Map<Policy, number>
  assurance: Assurance
  ipLists: IpListMatcher
  hash: string
  learning: Learning
}

function assemble ({ policies, byScope, order, assurance, ipLists, hash, learning }: SetParts): CompiledPolicySet {
  // Plans depend only on (tenant, application, action): cache them, bounded.
  const cache = new LRUCache<string, Plan>({ max: PLAN_CACHE_LIMIT })

  const computePlan = (tenant: string | undefined, application: string | undefined, action: string): Plan => {
    const keys = [scopeKey(undefined, undefined)]
    if (tenant !== undefined) keys.push(scopeKey(tenant, undefined))
    if (application !== undefined) keys.push(scopeKey(undefined, application))
    if (tenant !== undefined && application !== undefined) keys.push(scopeKey(tenant, application))
    const candidates: Policy[] = []
    for (const key of keys) {
      const index = byScope.get(key)
      if (index) candidates.push(...index.match(action))
    }
    candidates.sort((a, b) => order.get(a)! - order.get(b)!)
    const removed = overridden(candidates)
    const applying = candidates.filter(p => !removed.has(p.id))
    const overriddenHere = candidates.filter(p => removed.has(p.id)).map(policy => ({ policy, by: removed.get(policy.id)! }))
    const enforced = applying.filter(p => p.mode === 'enforce')
    const report = applying.filter(p => p.mode === 'report')
    const needs = { history: false, geo: false, ipLists: false, onceOnly: false }
    for (const p of applying) {
      needs.history ||= p.needs.history
      needs.geo ||= p.needs.geo
      needs.ipLists ||= p.needs.ipLists
    }
    // Report-only policies too: what they report must be what they would decide.
    needs.onceOnly = applying.some(p => p.effect === 'step_up' && p.require.maxAge === 0)
    const psd2 = psd2NeedsOf(applying)
    return { enforced, report, overridden: overriddenHere, needs: psd2 ? { ...needs, psd2 } : needs }
  }

  return {
    policies,
    assurance,
    ipLists,
    hash,
    revision: `sha256:${hash.slice(0, 16)}`,
    challengeHeaders: new LRUCache<string, string>({ max: CHALLENGE_CACHE_LIMIT }),
    learning,
    plan: ({ tenant, application, action }) => {
      const key = `${tenant ?? ''}\u0000${tenant === undefined ? 0 : 1}\u0000${application ?? ''}\u0000${application === undefined ? 0 : 1}\u0000${action}`
      let plan = cache.get(key)
      if (!plan) {
        plan = computePlan(tenant, application, action)
        cache.set(key, plan)
      }
      return plan
    }
  }
}

/**
 * Ids replaced for this request (docs/policies.md#scopes-and-overrides): every target of an applying enforced policy's
 * `overrides`, and, when several policies override the same target, the less specific ones
 * (an application override beats a tenant override beats a global one).
 */
function overridden (candidates: Policy[]): Map<string, string> {
  /** Removed id -> the id of the override that wins over it. */
  const removed = new Map<string, string>()
  const byTarget = new Map<string, Policy[]>()
  for (const p of candidates) {
    if (p.overrides === undefined || p.mode !== 'enforce') continue
    const list = byTarget.get(p.overrides) ?? []
    list.push(p)
    byTarget.set(p.overrides, list)
  }
  for (const [target, overriders] of byTarget) {
    const best = Math.max(...overriders.map(p => p.specificity))
    const winner = overriders.find(p => p.specificity === best)!.id
    removed.set(target, winner)
    for (const p of overriders) if (p.specificity < best) removed.set(p.id, winner)
  }
  return removed
}

function psd2NeedsOf (policies: readonly Policy[]): Psd2Needs | undefined {
  let needs: Psd2Needs | undefined
  for (const p of policies) {
    if (p.bind === undefined && p.lockout === undefined) continue
    needs ??= { bound: false, payee: false, lockoutWindow: 0 }
    if (p.bind === 'transaction') needs.bound = true
    if (p.exemptions?.trustedBeneficiary === true) needs.payee = true
    if (p.lockout && p.lockout.window > needs.lockoutWindow) needs.lockoutWindow = p.lockout.window
  }
  return needs
}

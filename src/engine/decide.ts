/**
 * The decision (docs/policies.md#combining): pure. Given a compiled set, the plan for the request, the
 * facts gathered for it and the time, it returns what to answer and what history may learn.
 */
import { evaluateSession, unmetBy, type Session, type Unmet } from './assurance.js'
import { acrValuesFor, GENERIC_STEP_UP, stepUpHeader, unmetHeader } from './challenge.js'
import { learnFrom, type HistoryUpdate } from './learning.js'
import type { Assurance, Facts, Policy, TriggerKind } from './model.js'
import type { CompiledPolicySet, Plan } from './policy-set.js'
import { RiskEvaluator, type TriggerResult } from './risk.js'

export type Outcome = 'step_up' | 'satisfied' | 'deny'
export type DecisionKind = 'allow' | 'step_up' | 'deny'
export type AuditEvent = 'auth.step_up_initiated' | 'auth.step_up_skipped' | 'auth.access_denied' | 'auth.allowed'

export interface Reason {
  policy: string
  trigger: TriggerKind
  outcome: Outcome
  detail?: string
  figures?: Record<string, unknown>
  /** For `step_up`: what the session lacks. */
  unmet?: Unmet[]
}

export interface RequiredAuthentication {
  aal: 1 | 2 | 3
  factors: string[]
  maxAge: number
  acrValues: string[]
}

export interface Decision {
  decision: DecisionKind
  event: AuditEvent
  required?: RequiredAuthentication
  challenge?: { status: 401 | 403, wwwAuthenticate?: string }
  enroll?: string[]
  message?: string
  reasons: Reason[]
  session: { aal: number, authAge?: number, factors: string[] }
  reportOnly: Array<{ policy: string, decision: DecisionKind, trigger: TriggerKind }>
  /** Enforced policies that applied and fired. */
  policies: string[]
  /** A once-only authentication this `allow` relies on: the caller must consume it atomically. */
  consumes?: { authTime: number }
  /** What history may learn from this decision (only ever set on `allow`). */
  learn?: HistoryUpdate
}

interface Fired { policy: Policy, triggers: Array<{ kind: TriggerKind, result: TriggerResult }> }

const GENERIC_DENY = 'This action is not allowed.'

export function decide (set: CompiledPolicySet, plan: Plan, facts: Facts, now: number): Decision {
  const assurance = set.assurance
  const session = evaluateSession(facts.request.claims, assurance, now)
  const risk = new RiskEvaluator(facts, assurance, now)
  const vars = lazyVars(facts, session, risk)

  const reasons: Reason[] = []
  const denies: Policy[] = []
  const unsatisfied: Policy[] = []
  let consumes: Decision['consumes']
  const firedIds: string[] = []

  for (const policy of plan.enforced) {
    const fired = fire(policy, risk, vars)
    if (!fired) continue
    firedIds.push(policy.id)
    let outcome: Outcome = 'deny'
    let unmet: Unmet[] | undefined
    if (policy.effect === 'deny') {
      denies.push(policy)
    } else {
      unmet = unmetOf(policy, session, facts, assurance)
      outcome = unmet.length > 0 ? 'step_up' : 'satisfied'
      if (outcome === 'step_up') unsatisfied.push(policy)
      else if (policy.require.maxAge === 0 && session.authTime !== undefined) consumes = { authTime: session.authTime }
    }
    for (const t of fired.triggers) {
      const reason: Reason = { policy: policy.id, trigger: t.kind, outcome }
      if (t.result.detail !== undefined) reason.detail = t.result.detail
      if (t.result.figures !== undefined) reason.figures = t.result.figures
      if (unmet !== undefined && unmet.length > 0) reason.unmet = unmet
      reasons.push(reason)
    }
  }

  const reportOnly: Decision['reportOnly'] = []
  for (const policy of plan.report) {
    const fired = fire(policy, risk, vars)
    if (!fired) continue
    const would = policy.effect === 'deny' ? 'deny' : unmetOf(policy, session, facts, assurance).length === 0 ? 'allow' : stepUp([policy], facts, assurance).decision
    reportOnly.push({ policy: policy.id, decision: would, trigger: fired.triggers[0]!.kind })
  }

  const factors: string[] = []
  for (const f of assurance.factors) if (session.factors.has(f.name)) factors.push(f.name)
  const decision: Decision = {
    decision: 'allow',
    event: firedIds.length > 0 ? 'auth.step_up_skipped' : 'auth.allowed',
    reasons,
    reportOnly,
    policies: firedIds,
    session: session.authAge !== undefined ? { aal: session.aal, authAge: session.authAge, factors } : { aal: session.aal, factors }
  }

  if (denies.length > 0) {
    decision.decision = 'deny'
    decision.event = 'auth.access_denied'
    decision.message = denies.find(p => p.message)?.message ?? GENERIC_DENY
    decision.challenge = { status: 403 }
    return decision
  }
  if (unsatisfied.length > 0) return Object.assign(decision, stepUp(unsatisfied, facts, assurance))

  if (consumes) decision.consumes = consumes
  if (facts.history.status === 'found') {
    decision.learn = learnFrom(facts, facts.history.snapshot, set.learning.forTenant(facts.request.tenant), session, risk, assurance, now)
  }
  return decision
}

function fire (policy: Policy, risk: RiskEvaluator, vars: () => Record<string, unknown>): Fired | undefined {
  const triggers: Fired['triggers'] = []
  for (const trigger of policy.triggers) {
    let result: TriggerResult
    if (trigger.kind === 'always') result = { fired: true }
    else if (trigger.kind === 'condition') {
      const failed = unavailableFor(trigger.program.reads, risk)
      if (failed) result = { fired: true, detail: `${trigger.program.source}: ${failed}` }
      else {
        const r = trigger.program.evaluate(vars())
        result = 'error' in r
          ? { fired: true, detail: `${trigger.program.source}: ${r.error} (an error fails closed)` }
          : { fired: r.value, detail: trigger.program.source }
      }
    } else result = risk.evaluate(trigger)
    if (result.fired) triggers.push({ kind: trigger.kind, result })
  }
  return triggers.length > 0 ? { policy, triggers } : undefined
}

/** A condition that reads a signal whose facts could not be gathered fires (docs/failure-rules.md). */
function unavailableFor (reads: ReadonlySet<string>, risk: RiskEvaluator): string | undefined {
  if (!reads.has('signals') && !reads.has('geo')) return undefined
  return risk.failureFor(reads)
}

function unmetOf (policy: Policy, session: Session, facts: Facts, assurance: Assurance): Unmet[] {
  const unmet = unmetBy(session, policy.require, assurance)
  if (policy.require.maxAge === 0 && unmet.length === 0) {
    // Once-only: an authentication already consumed, or whose state is unknown, does not count.
    if (facts.onceOnly.status !== 'found' || facts.onceOnly.consumed) unmet.push('consumed')
  }
  return unmet
}

/** Merges unsatisfied step-up policies into one requirement (docs/policies.md#combining). */
function stepUp (policies: Policy[], facts: Facts, assurance: Assurance): Pick<Decision, 'decision' | 'event' | 'required' | 'challenge' | 'enroll' | 'message'> {
  let aal: 1 | 2 | 3 = 1
  let maxAge = Infinity
  let allowed = null as Set<string> | null
  for (const p of policies) {
    if (p.require.aal > aal) aal = p.require.aal
    if (p.require.maxAge < maxAge) maxAge = p.require.maxAge
    if (p.require.factors !== null) {
      const next: Set<string> = new Set(p.require.factors)
      allowed = allowed === null ? next : new Set([...allowed].filter(f => next.has(f)))
    }
  }
  const strictest = [...policies].sort((a, b) => b.require.aal - a.require.aal || a.require.maxAge - b.require.maxAge)[0]!
  const reachable = assurance.factors.filter(f => f.maxAal >= aal && (allowed === null || allowed.has(f.name))).map(f => f.name)
  const enrolled = facts.request.enrolledFactors
  const factors = enrolled === undefined ? reachable : reachable.filter(f => enrolled.includes(f))
  const acrValues = acrValuesFor(aal, factors.length > 0 ? factors : reachable, assurance)
  const required: RequiredAuthentication = { aal, factors, maxAge, acrValues }

  if (factors.length === 0) {
    const message = reachable.length === 0
      ? 'No authentication method can meet the combined requirements of this action.'
      : `This action needs a stronger authentication method than the ones enrolled: enroll ${reachable.map(f => f.replace(/_/g, ' ')).join(' or ')}.`
    return {
      decision: 'deny',
      event: 'auth.access_denied',
      required,
      enroll: reachable,
      message,
      challenge: { status: 403, wwwAuthenticate: unmetHeader(message) }
    }
  }
  const message = strictest.message ?? GENERIC_STEP_UP
  return {
    decision: 'step_up',
    event: 'auth.step_up_initiated',
    required,
    message,
    challenge: { status: 401, wwwAuthenticate: stepUpHeader(message, acrValues, maxAge) }
  }
}

/** The CEL variables, built on first use: most requests never evaluate a condition. */
function lazyVars (facts: Facts, session: Session, risk: RiskEvaluator): () => Record<string, unknown> {
  let vars: Record<string, unknown> | undefined
  return () => {
    if (vars) return vars
    const r = facts.request
    const geo = facts.geo.status === 'found' ? stripUndefined({ ...facts.geo.location }) : {}
    vars = {
      action: r.action,
      tenant: r.tenant ?? null,
      application: r.application ?? null,
      ip: r.ip ?? null,
      resource: r.resource ?? null,
      subject: stripUndefined({ id: r.subjectId, enrolledFactors: r.enrolledFactors }),
      claims: r.claims,
      context: r.context,
      geo,
      session: stripUndefined({ aal: session.aal, authAge: session.authAge })
    }
    // `signals` costs every default-parameter trigger: computed only if a condition reads it.
    let signals: Record<string, unknown> | undefined
    Object.defineProperty(vars, 'signals', { enumerable: true, get: () => (signals ??= risk.celSignals()) })
    return vars
  }
}

function stripUndefined (o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k in o) if (o[k] !== undefined) out[k] = o[k]
  return out
}

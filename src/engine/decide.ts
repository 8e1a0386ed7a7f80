/**
 * The decision (SPEC §2, §3.3): pure. Given a compiled set, the plan for the request, the
 * facts gathered for it and the time, it returns what to answer and what history may learn.
 */
import { evaluateSession, expiredAt, isDpopBound, unmetBy, type Session, type Unmet } from './assurance.js'
import { invalidTokenDecision } from './challenge.js'
import { stepUp } from './combine.js'
import { learnFrom, type HistoryUpdate } from './learning.js'
import type { Assurance, Facts, Policy, TriggerKind } from './model.js'
import type { CompiledPolicySet, Plan } from './policy-set.js'
import { RiskEvaluator, type TriggerResult } from './risk.js'

export type Outcome = 'step_up' | 'satisfied' | 'deny'
export type DecisionKind = 'allow' | 'step_up' | 'deny'
export type AuditEvent = 'auth.step_up_initiated' | 'auth.step_up_skipped' | 'auth.access_denied' | 'auth.allowed'

/** A trigger that fired, `token` (the token is no session) or `challenge` (a step-up that cannot help). */
export type ReasonSource = TriggerKind | 'token' | 'challenge'

export interface Reason {
  policy: string
  trigger: ReasonSource
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
  /** OAuth scopes the new token must hold (all of them), when a policy requires scopes. */
  scopes?: string[]
}

export interface Decision {
  decision: DecisionKind
  event: AuditEvent
  required?: RequiredAuthentication
  challenge?: { status: 401 | 403, wwwAuthenticate?: string }
  enroll?: string[]
  message?: string
  reasons: Reason[]
  session: { aal: number, authAge?: number, factors: string[], acrProves?: string[] }
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
  const claims = facts.request.claims
  const expired = expiredAt(claims, now, assurance.clockSkew)
  if (expired !== undefined) {
    return invalidTokenDecision('exp', 'The access token expired.', {
      detail: `the token expired at ${new Date(expired * 1000).toISOString()}, more than the clock skew (${assurance.clockSkew} s) ago`,
      dpop: isDpopBound(claims, facts.request.dpopBound)
    })
  }
  const session = evaluateSession(claims, assurance, now, facts.request.issuer)
  const risk = new RiskEvaluator(facts, assurance, now)
  const vars = lazyVars(facts, session, risk)

  const reasons: Reason[] = []
  const denies: Policy[] = []
  const stepUps: Policy[] = []
  const unmetByPolicy = new Map<Policy, Unmet[]>()
  let anyUnmet = false
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
      stepUps.push(policy)
      unmetByPolicy.set(policy, unmet)
      if (outcome === 'step_up') anyUnmet = true
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
    const unmet = policy.effect === 'deny' ? [] : unmetOf(policy, session, facts, assurance)
    const would = policy.effect === 'deny' ? 'deny' : unmet.length === 0 ? 'allow' : stepUp([policy], () => unmet, session, facts, assurance).decision
    reportOnly.push({ policy: policy.id, decision: would, trigger: fired.triggers[0]!.kind })
  }

  const factors: string[] = []
  const acrProves: string[] = []
  for (const f of assurance.factors) {
    if (session.factors.has(f.name)) factors.push(f.name)
    if (session.acrProves.has(f.name)) acrProves.push(f.name)
  }
  const decision: Decision = {
    decision: 'allow',
    event: firedIds.length > 0 ? 'auth.step_up_skipped' : 'auth.allowed',
    reasons,
    reportOnly,
    policies: firedIds,
    session: session.authAge !== undefined ? { aal: session.aal, authAge: session.authAge, factors } : { aal: session.aal, factors }
  }
  if (acrProves.length > 0) decision.session.acrProves = acrProves

  if (denies.length > 0) {
    decision.decision = 'deny'
    decision.event = 'auth.access_denied'
    decision.message = denies.find(p => p.message)?.message ?? GENERIC_DENY
    decision.challenge = { status: 403 }
    return decision
  }
  if (anyUnmet) {
    // One prompt per action: every fired step-up policy, satisfied or not, joins the merge.
    const { reason, ...outcome } = stepUp(stepUps, p => unmetByPolicy.get(p)!, session, facts, assurance)
    if (reason) reasons.push(reason)
    return Object.assign(decision, outcome)
  }

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

/** A condition that reads a signal whose facts could not be gathered fires (SPEC §6). */
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

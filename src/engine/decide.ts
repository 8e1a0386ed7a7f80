/**
 * The decision (docs/api.md, docs/policies.md): pure. Given a compiled set, the plan for the request, the
 * facts gathered for it and the time, it returns what to answer and what history may learn.
 */
import { evaluateSession, expiredAt, isDpopBound, unmetBy, type Session, type Unmet } from './assurance.js'
import { invalidTokenDecision, lockedHeader } from './challenge.js'
import { stepUp } from './combine.js'
import { learnFrom, type HistoryUpdate } from './learning.js'
import type { Assurance, ExemptionKind, Facts, Policy, TriggerKind } from './model.js'
import { needsOf } from './needs.js'
import type { CompiledPolicySet, Plan } from './policy-set.js'
import { RiskEvaluator, type TriggerResult } from './risk.js'
import { bindUnmet, exemptionFor, LOCKED_MESSAGE, lockedOut, type ExemptionResult } from './psd2.js'

export type Outcome = 'step_up' | 'satisfied' | 'deny'
export type DecisionKind = 'allow' | 'step_up' | 'deny'
export type AuditEvent = 'auth.step_up_initiated' | 'auth.step_up_skipped' | 'auth.access_denied' | 'auth.allowed'

/**
 * A trigger that fired, `token` (the token is no session), `challenge` (a step-up that cannot
 * help), `transaction` (a bound policy and no `context.transaction`) or `lockout` (too many failed step-ups).
 */
export type ReasonSource = TriggerKind | 'token' | 'challenge' | 'transaction' | 'lockout'

export interface Reason {
  policy: string
  trigger: ReasonSource
  outcome: Outcome
  detail?: string
  figures?: Record<string, unknown>
  /** For `step_up`: what the session lacks. */
  unmet?: Unmet[]
  /** A PSD2 exemption that satisfied the policy without an SCA. */
  exemption?: ExemptionKind
}

/** One trigger of a policy as the engine evaluated it; `error`: its facts were missing or it failed, so it fired (fails closed). */
export interface TriggerTrace {
  kind: TriggerKind
  status: 'fired' | 'not_fired' | 'error'
  detail?: string
  figures?: Record<string, unknown>
}

/**
 * One policy whose scope and actions matched the request. `triggers` lines up with the
 * policy's `when` list (an overridden policy is not evaluated: none). For a report-only
 * policy, `outcome` is what it would decide if enforced alone.
 */
export interface PolicyTrace {
  policy: string
  file: string
  line: number
  mode: 'enforce' | 'report'
  overriddenBy?: string
  triggers: TriggerTrace[]
  outcome: 'not_fired' | 'step_up' | 'satisfied' | 'deny' | 'overridden'
  /** What the session lacks, when a fired step-up policy is not satisfied. */
  unmet?: string[]
  /** A PSD2 exemption satisfied it (outcome `satisfied`), with its figures; or why none did (`exemptionDetail`). */
  exemption?: ExemptionKind
  exemptionFigures?: Record<string, unknown>
  exemptionDetail?: string
}

/** How the unsatisfied step-up policies combined into one requirement. */
export interface MergeTrace {
  aal: 1 | 2 | 3
  /** The factor classes every restricting policy allows; null = no policy restricts them. */
  factors: string[] | null
  maxAge: number
  onceOnly: boolean
  scopes?: string[]
  policies: string[]
}

/** What the engine considered and why: every explanation (reasons, reportOnly, CLI, coverage) is a view of it. */
export interface DecisionTrace {
  policies: PolicyTrace[]
  merge?: MergeTrace
}

export interface RequiredAuthentication {
  aal: 1 | 2 | 3
  factors: string[]
  maxAge: number
  acrValues: string[]
  /** OAuth scopes the new token must hold (all of them), when a policy requires scopes. */
  scopes?: string[]
  /** PSD2 dynamic linking: the RFC 9396 authorization_details the client must request. */
  authorizationDetails?: Array<Record<string, unknown>>
}

/** PSD2 writes an `allow` relies on; the caller makes them atomically, and decides again when one fails. */
export interface Psd2Writes {
  /** Spend the linked SCA (once per subject, auth_time, transaction); resets exemptions and failures. */
  sca?: { authTime: number, txHash: string, ttl: number, trustPayeeId?: string }
  /** Count an exempted payment (lowValue: only within `limit`). */
  exempt?: { kind: ExemptionKind, cents: number, limit?: { count: number, cents: number } }
  /** A step-up succeeded on a lockout policy without `bind`: the failed attempts in a row end. */
  clearFailures?: true
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
  /** PSD2 writes this `allow` relies on (only ever set on `allow`). */
  psd2?: Psd2Writes
  /** What history may learn from this decision (only ever set on `allow`). */
  learn?: HistoryUpdate
  /** Only when asked for (`decide(..., { trace: true })`). */
  trace?: DecisionTrace
}

export interface DecideOptions {
  /** Return the trace on the decision (it is always recorded: reasons and reportOnly are views of it). */
  trace?: boolean
}

const GENERIC_DENY = 'This action is not allowed.'

export function decide (set: CompiledPolicySet, plan: Plan, facts: Facts, now: number, options?: DecideOptions): Decision {
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

  const traced: PolicyTrace[] = []
  const denies: Policy[] = []
  const stepUps: Policy[] = []
  const unmetByPolicy = new Map<Policy, Unmet[]>()
  let anyUnmet = false
  let consumes: Decision['consumes']
  const psd2: Psd2Writes = {}
  const extraReasons: Reason[] = []
  let noTransaction = false

  for (const policy of plan.enforced) {
    const { entry, fired } = fire(policy, risk, vars, facts)
    traced.push(entry)
    if (!fired) continue
    if (policy.effect === 'deny') {
      entry.outcome = 'deny'
      denies.push(policy)
    } else if (policy.bind === 'transaction' && facts.request.transaction === undefined) {
      // A payment cannot be linked to nothing: fails closed, naming the field.
      entry.outcome = 'deny'
      denies.push(policy)
      noTransaction = true
      extraReasons.push({ policy: policy.id, trigger: 'transaction', outcome: 'deny', detail: 'context.transaction: required by this policy (require.bind: transaction)' })
    } else {
      const { unmet, exemption, sca } = evaluateStepUp(policy, entry, session, facts, assurance)
      entry.outcome = unmet.length > 0 ? 'step_up' : 'satisfied'
      stepUps.push(policy)
      unmetByPolicy.set(policy, unmet)
      if (unmet.length > 0) { entry.unmet = unmet; anyUnmet = true; continue }
      if (policy.require.maxAge === 0 && session.authTime !== undefined) consumes = { authTime: session.authTime }
      if (sca) psd2.sca = { ...sca, ttl: Math.max(sca.ttl, psd2.sca?.ttl ?? 0) }
      if (policy.lockout && policy.bind === undefined && facts.psd2?.status === 'found' && facts.psd2.state.failures.length > 0) psd2.clearFailures = true
      if (exemption && !psd2.exempt) psd2.exempt = { kind: exemption.kind, cents: exemption.cents, ...(exemption.limit ? { limit: exemption.limit } : {}) }
    }
  }

  for (const policy of plan.report) {
    const { entry, fired } = fire(policy, risk, vars, facts)
    traced.push(entry)
    if (!fired) continue
    if (policy.effect === 'deny' || (policy.bind === 'transaction' && facts.request.transaction === undefined)) { entry.outcome = 'deny'; continue }
    const { unmet } = evaluateStepUp(policy, entry, session, facts, assurance)
    if (unmet.length === 0) { entry.outcome = 'satisfied'; continue }
    entry.unmet = unmet
    // What it would decide alone: a requirement no enrolled factor can meet (or a futile challenge) is a deny.
    entry.outcome = stepUp({ policies: [policy], unmetOf: () => unmet, session, facts, assurance }).decision === 'deny' ? 'deny' : 'step_up'
  }

  for (const { policy, by } of plan.overridden) {
    traced.push({ policy: policy.id, file: policy.file, line: policy.line, mode: policy.mode, overriddenBy: by, triggers: [], outcome: 'overridden' })
  }

  const trace: DecisionTrace = { policies: traced }
  const fired = firedPolicies(trace)
  const factors: string[] = []
  const acrProves: string[] = []
  for (const f of assurance.factors) {
    if (session.factors.has(f.name)) factors.push(f.name)
    if (session.acrProves.has(f.name)) acrProves.push(f.name)
  }
  const decision: Decision = {
    decision: 'allow',
    event: fired.length > 0 ? 'auth.step_up_skipped' : 'auth.allowed',
    reasons: extraReasons.length > 0 ? [...reasonsOf(trace), ...extraReasons] : reasonsOf(trace),
    reportOnly: reportOnlyOf(trace),
    policies: fired,
    session: session.authAge !== undefined ? { aal: session.aal, authAge: session.authAge, factors } : { aal: session.aal, factors }
  }
  if (acrProves.length > 0) decision.session.acrProves = acrProves
  if (options?.trace === true) decision.trace = trace

  if (denies.length > 0) {
    decision.decision = 'deny'
    decision.event = 'auth.access_denied'
    decision.message = denies.find(p => p.effect === 'deny' && p.message)?.message ?? (noTransaction ? NO_TRANSACTION : GENERIC_DENY)
    decision.challenge = { status: 403 }
    return decision
  }
  if (anyUnmet) {
    // PSD2 lockout: a subject with too many recent failed step-ups gets no new prompt.
    for (const policy of stepUps) {
      const locked = unmetByPolicy.get(policy)!.length > 0 ? lockedOut(policy, facts, now) : undefined
      if (!locked) continue
      decision.decision = 'deny'
      decision.event = 'auth.access_denied'
      decision.message = LOCKED_MESSAGE
      decision.challenge = { status: 403, wwwAuthenticate: lockedHeader(LOCKED_MESSAGE, isDpopBound(claims, facts.request.dpopBound) ? 'DPoP' : 'Bearer') }
      decision.reasons.push({
        policy: policy.id,
        trigger: 'lockout',
        outcome: 'deny',
        detail: `${locked.failures} failed step-ups within ${policy.lockout!.window} s: locked until ${new Date(locked.until * 1000).toISOString()}`,
        figures: { failures: locked.failures, attempts: policy.lockout!.attempts, window: policy.lockout!.window, retryAfter: Math.max(1, Math.ceil(locked.until - now)) }
      })
      return decision
    }
    // One prompt per action: every fired step-up policy, satisfied or not, joins the merge.
    const { reason, merge, ...outcome } = stepUp({ policies: stepUps, unmetOf: p => unmetByPolicy.get(p)!, session, facts, assurance, headers: set.challengeHeaders })
    trace.merge = merge
    if (reason) decision.reasons.push(reason)
    return Object.assign(decision, outcome)
  }

  if (consumes) decision.consumes = consumes
  // The SCA's own write clears failures; otherwise one write per kind.
  if (psd2.sca) decision.psd2 = { sca: psd2.sca }
  else if (psd2.exempt || psd2.clearFailures) decision.psd2 = { ...(psd2.exempt ? { exempt: psd2.exempt } : {}), ...(psd2.clearFailures ? { clearFailures: true } : {}) }
  if (facts.history.status === 'found') {
    decision.learn = learnFrom(facts, { snapshot: facts.history.snapshot, rules: set.learning.forTenant(facts.request.tenant), session, risk, assurance, now })
  }
  return decision
}

/** `reasons`: one per fired (or failed) trigger of each enforced policy that fired, in policy order. */
export function reasonsOf (trace: DecisionTrace): Reason[] {
  const reasons: Reason[] = []
  for (const p of trace.policies) {
    if (p.mode !== 'enforce' || (p.outcome !== 'step_up' && p.outcome !== 'satisfied' && p.outcome !== 'deny')) continue
    for (const t of p.triggers) {
      if (t.status === 'not_fired') continue
      const reason: Reason = { policy: p.policy, trigger: t.kind, outcome: p.outcome }
      if (t.detail !== undefined) reason.detail = t.detail
      if (t.figures !== undefined) reason.figures = t.figures
      if (p.exemptionFigures !== undefined) reason.figures = { ...reason.figures, ...p.exemptionFigures }
      if (p.unmet !== undefined) reason.unmet = p.unmet as Unmet[]
      if (p.exemption !== undefined) reason.exemption = p.exemption
      reasons.push(reason)
    }
  }
  return reasons
}

/** `reportOnly`: each report-only policy that fired, what it would decide, and its first fired trigger. */
export function reportOnlyOf (trace: DecisionTrace): Decision['reportOnly'] {
  const out: Decision['reportOnly'] = []
  for (const p of trace.policies) {
    if (p.mode !== 'report' || p.outcome === 'not_fired' || p.outcome === 'overridden') continue
    const first = p.triggers.find(t => t.status !== 'not_fired')!
    out.push({ policy: p.policy, decision: p.outcome === 'satisfied' ? 'allow' : p.outcome, trigger: first.kind })
  }
  return out
}

/** Ids of the enforced policies that fired. */
export function firedPolicies (trace: DecisionTrace): string[] {
  const ids: string[] = []
  for (const p of trace.policies) if (p.mode === 'enforce' && p.outcome !== 'not_fired' && p.outcome !== 'overridden') ids.push(p.policy)
  return ids
}

/** Evaluates every trigger of the policy; when one fired, the caller sets the entry's outcome. */
function fire (policy: Policy, risk: RiskEvaluator, vars: () => Record<string, unknown>, facts: Facts): { entry: PolicyTrace, fired: boolean } {
  const triggers: TriggerTrace[] = []
  let any = false
  for (const trigger of policy.triggers) {
    let entry: TriggerTrace
    if (trigger.kind === 'always') entry = FIRED_ALWAYS
    else if (trigger.kind === 'condition') {
      const source = trigger.program.source
      const failed = unavailableFor(trigger.program.reads, risk)
      if (failed) entry = { kind: 'condition', status: 'error', detail: `${source}: ${failed}` }
      else {
        const r = trigger.program.evaluate(vars())
        entry = 'error' in r
          ? { kind: 'condition', status: 'error', detail: `${source}: ${r.error} (an error fails closed)` }
          : { kind: 'condition', status: r.value ? 'fired' : 'not_fired', detail: source }
      }
    } else entry = traceOf(trigger.kind, risk.evaluate(trigger), failedFacts(trigger, facts))
    if (entry.status !== 'not_fired') any = true
    triggers.push(entry)
  }
  const entry: PolicyTrace = { policy: policy.id, file: policy.file, line: policy.line, mode: policy.mode, triggers, outcome: 'not_fired' }
  return any ? { entry, fired: true } : { entry, fired: false }
}

const FIRED_ALWAYS: TriggerTrace = Object.freeze({ kind: 'always', status: 'fired' })
const NOT_FIRED = new Map<TriggerKind, TriggerTrace>()

function traceOf (kind: TriggerKind, result: TriggerResult, failed: boolean): TriggerTrace {
  if (!result.fired) {
    let entry = NOT_FIRED.get(kind)
    if (!entry) { entry = Object.freeze({ kind, status: 'not_fired' }); NOT_FIRED.set(kind, entry) }
    return entry
  }
  const entry: TriggerTrace = { kind, status: failed ? 'error' : 'fired' }
  if (result.detail !== undefined) entry.detail = result.detail
  if (result.figures !== undefined) entry.figures = result.figures
  return entry
}

/** A risk trigger that fired while a fact it needs was unavailable fired because of that (fails closed). */
function failedFacts (trigger: Policy['triggers'][number], facts: Facts): boolean {
  if (facts.history.status !== 'unavailable' && facts.geo.status !== 'unavailable') return false
  const needs = needsOf(trigger)
  return (needs.history && facts.history.status === 'unavailable') || (needs.geo && facts.geo.status === 'unavailable')
}

/** A condition that reads a signal whose facts could not be gathered fires (fails closed). */
function unavailableFor (reads: ReadonlySet<string>, risk: RiskEvaluator): string | undefined {
  if (!reads.has('signals') && !reads.has('geo')) return undefined
  return risk.failureFor(reads)
}

const NO_TRANSACTION = 'This payment cannot be authorized: the request names no transaction.'

/**
 * What a fired step-up policy lacks. For a bound policy (PSD2) also the dynamic link, and, when an
 * SCA is missing, the exemption that replaces it (recorded on the trace entry); a satisfied
 * bound policy names the SCA to spend.
 */
function evaluateStepUp (policy: Policy, entry: PolicyTrace, session: Session, facts: Facts, assurance: Assurance): { unmet: Unmet[], exemption?: ExemptionResult, sca?: { authTime: number, txHash: string, ttl: number, trustPayeeId?: string } } {
  const unmet = unmetOf(policy, session, facts, assurance)
  const tx = facts.request.transaction
  if (policy.bind !== 'transaction' || tx === undefined) return { unmet }
  for (const u of bindUnmet(session, facts, tx)) if (!unmet.includes(u)) unmet.push(u)
  if (unmet.length === 0) {
    const sca = { authTime: session.authTime!, txHash: tx.hash, ttl: policy.require.maxAge + 2 * assurance.clockSkew + 60 }
    return { unmet, sca: tx.trustPayee ? { ...sca, trustPayeeId: tx.payeeId } : sca }
  }
  if (unmet.includes('scope') || !policy.exemptions) return { unmet }
  // An exemption waives strong authentication, not authentication: a session of AAL 0 gets none.
  if (session.aal < 1) { entry.exemptionDetail = 'no exemption: the session is not authenticated (AAL 0)'; return { unmet } }
  const exemption = exemptionFor(policy, tx, facts)
  if ('none' in exemption) { entry.exemptionDetail = exemption.none; return { unmet } }
  entry.exemption = exemption.kind
  entry.exemptionFigures = exemption.figures
  return { unmet: [], exemption }
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

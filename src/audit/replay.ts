/**
 * Replay: recorded decisions decided again by another policy set, with the recorded facts and
 * the recorded clock (the engine is pure: no geo, Redis or clock is consulted). IP-list hits
 * are looked up again in the new set's lists (the address is recorded, the lists belong to the
 * folder). A decision that needs a fact the record does not hold (history or geo the old set
 * did not need, once-only state, a claim or context key the record does not keep) is counted
 * as one that cannot be judged, never guessed.
 */
import { decide, type Decision, type DecisionKind } from '../engine/decide.js'
import type { DecisionRequest, Facts, Policy } from '../engine/model.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { authTimeOf } from '../engine/assurance.js'
import { RECORDED_CLAIMS, isDecisionRecord, type AuditRecord, type DecisionAuditRecord } from './audit-log.js'

const STRENGTH: Record<DecisionKind, number> = { allow: 0, step_up: 1, deny: 2 }

export interface ReplaySample {
  decisionId: string
  subject: string
  action: string
  tenant?: string
  before: string
  after: DecisionKind
  reasons: string[]
}

export interface ReplayReport {
  /** Records read (decision records and others). */
  read: number
  /** Decision records re-decided. */
  replayed: number
  changed: number
  weaker: number
  stronger: number
  /** "allow -> step_up": count, for every pair seen (unchanged ones too); "step_up -> step_up (weaker requirement)" when the step-up asks less. */
  transitions: Record<string, number>
  /** Per policy: decisions it fired in before and after, and changed decisions it fires in now. */
  byPolicy: Record<string, { before: number, after: number }>
  /** Changed decisions, up to the sample size; a step-up asking less or more counts as changed. */
  samples: ReplaySample[]
  /** Decisions that cannot be judged, by the missing fact. */
  unjudgeable: { count: number, byFact: Record<string, number> }
  /** Decision records without the recorded request and facts (written by an older version). */
  notReplayable: number
  revisionsBefore: string[]
  revisionAfter: string
}

const CLAIM_READ = /\bclaims\s*(?:\.\??\s*([A-Za-z_]\w*)|\[\s*["']([^"']+)["']\s*\])/g
const CONTEXT_READ = /\bcontext\s*(?:\.\??\s*([A-Za-z_]\w*)|\[\s*["']([^"']+)["']\s*\])/g

const readsOf = (policy: Policy, re: RegExp): string[] => policy.triggers.flatMap(t =>
  t.kind === 'condition' ? [...t.program.source.matchAll(re)].map(m => m[1] ?? m[2]!) : [])

/** The fact a decision under `set` would need that the record lacks; undefined when it can be judged. */
function missingFact (set: CompiledPolicySet, record: DecisionAuditRecord, request: DecisionRequest): string | undefined {
  const plan = set.plan(request)
  const facts = record.facts!
  if (plan.needs.history && facts.history.status === 'skipped') return 'history'
  if ((plan.needs.geo || plan.needs.history) && request.ip !== undefined && facts.geo.status === 'skipped') return 'geo'
  if (plan.needs.onceOnly && authTimeOf(request.claims) !== undefined && facts.onceOnly.status === 'skipped') return 'once-only state'
  if (plan.needs.psd2 !== undefined && facts.psd2 === undefined) return 'PSD2 state'
  if (plan.needs.psd2?.bound === true && record.request!.redacted?.includes('transaction') === true) return 'redacted context.transaction'
  const recorded = new Set<string>(RECORDED_CLAIMS)
  if (request.issuer?.stepUpClaim !== undefined) recorded.add(request.issuer.stepUpClaim.claim)
  // A step-up claim the folder declares under another name was not kept by the record.
  const stepUpClaim = request.issuer === undefined ? set.assurance.stepUpClaim?.claim : undefined
  if (stepUpClaim !== undefined && !recorded.has(stepUpClaim)) return `claim ${stepUpClaim}`
  const redacted = new Set(record.request!.redacted ?? [])
  for (const policy of [...plan.enforced, ...plan.report]) {
    const claim = readsOf(policy, CLAIM_READ).find(c => !recorded.has(c))
    if (claim !== undefined) return `claim ${claim}`
    const key = readsOf(policy, CONTEXT_READ).find(k => redacted.has(k))
    if (key !== undefined) return `redacted context.${key}`
  }
  return undefined
}

function requestOf (record: DecisionAuditRecord): DecisionRequest {
  const r = record.request!
  return {
    action: r.action,
    tenant: r.tenant,
    application: r.application,
    subjectId: r.subjectId,
    enrolledFactors: r.enrolledFactors,
    claims: r.claims,
    ip: r.ip,
    deviceId: r.deviceId,
    resource: r.resource,
    context: r.context,
    ...(r.issuer !== undefined ? { issuer: r.issuer } : {}),
    ...(r.dpopBound !== undefined ? { dpopBound: r.dpopBound } : {}),
    ...(r.tokenVerified !== undefined ? { tokenVerified: r.tokenVerified } : {}),
    ...(r.transaction !== undefined ? { transaction: r.transaction } : {})
  }
}

/** Re-decides one record; `undefined` decision with the missing fact when it cannot be judged. */
export function replayOne (set: CompiledPolicySet, record: DecisionAuditRecord): { decision: Decision } | { missing: string } {
  const request = requestOf(record)
  const missing = missingFact(set, record, request)
  if (missing !== undefined) return { missing }
  const f = record.facts!
  const facts: Facts = {
    request,
    geo: f.geo.status === 'skipped' ? { status: 'none' } : f.geo,
    history: f.history,
    ipLists: request.ip !== undefined ? set.ipLists.lookup(request.ip) : [],
    onceOnly: f.onceOnly,
    ...(f.psd2 !== undefined ? { psd2: f.psd2 } : {})
  }
  return { decision: decide(set, set.plan(request), facts, record.now!) }
}

/**
 * -1 when the new step-up asks less (lower AAL, longer maxAge, or more factors accepted), 1 when
 * it asks more, 0 when the same or when the record does not say what was asked.
 */
function compareRequirement (old: DecisionAuditRecord['required'], next: Decision['required']): number {
  if (old === undefined || next === undefined) return 0
  if (next.aal !== old.aal) return next.aal < old.aal ? -1 : 1
  if (next.maxAge !== old.maxAge) return next.maxAge > old.maxAge ? -1 : 1
  const wider = next.factors.some(f => !old.factors.includes(f))
  const narrower = old.factors.some(f => !next.factors.includes(f))
  return wider && !narrower ? -1 : narrower && !wider ? 1 : 0
}

const describeReason = (r: Decision['reasons'][number]): string =>
  `${r.policy}: ${r.trigger}${r.detail !== undefined ? ` (${r.detail})` : ''} -> ${r.outcome}${r.unmet && r.unmet.length > 0 ? ` [unmet: ${r.unmet.join(', ')}]` : ''}`

export function createReplay (set: CompiledPolicySet, options: { since?: number, samples?: number } = {}): {
  add: (record: AuditRecord) => void
  report: () => ReplayReport
} {
  const report: ReplayReport = {
    read: 0, replayed: 0, changed: 0, weaker: 0, stronger: 0, transitions: {}, byPolicy: {}, samples: [],
    unjudgeable: { count: 0, byFact: {} }, notReplayable: 0, revisionsBefore: [], revisionAfter: set.revision
  }
  const revisions = new Set<string>()
  const maxSamples = options.samples ?? 10
  const policy = (id: string): { before: number, after: number } => (report.byPolicy[id] ??= { before: 0, after: 0 })
  return {
    add (record) {
      report.read++
      if (!isDecisionRecord(record) || record.decision === undefined || !record.event.startsWith('auth.') || record.event === 'auth.step_up_completed' || record.event === 'auth.step_up_failed') return
      if (options.since !== undefined && record.at < options.since) return
      if (record.request === undefined || record.facts === undefined || record.now === undefined) { report.notReplayable++; return }
      if (record.revision !== undefined) revisions.add(record.revision)
      const result = replayOne(set, record)
      if ('missing' in result) {
        report.unjudgeable.count++
        report.unjudgeable.byFact[result.missing] = (report.unjudgeable.byFact[result.missing] ?? 0) + 1
        return
      }
      report.replayed++
      const before = record.decision as DecisionKind
      const after = result.decision.decision
      const requirement = before === 'step_up' && after === 'step_up' ? compareRequirement(record.required, result.decision.required) : 0
      const pair = requirement === 0 ? `${before} -> ${after}` : `step_up -> step_up (${requirement < 0 ? 'weaker' : 'stronger'} requirement)`
      report.transitions[pair] = (report.transitions[pair] ?? 0) + 1
      for (const id of record.policies ?? []) policy(id).before++
      for (const id of result.decision.policies) policy(id).after++
      if (before === after && requirement === 0) return
      report.changed++
      if (STRENGTH[after] < STRENGTH[before] || requirement < 0) report.weaker++
      else report.stronger++
      if (report.samples.length < maxSamples) {
        report.samples.push({
          decisionId: record.decisionId, subject: record.subject, action: record.action,
          ...(record.tenant !== undefined ? { tenant: record.tenant } : {}),
          before, after,
          reasons: result.decision.reasons.length > 0 ? result.decision.reasons.map(describeReason) : [`no policy fires now (before: ${(record.policies ?? []).join(', ') || 'none'})`]
        })
      }
    },
    report () {
      report.revisionsBefore = [...revisions].sort()
      return report
    }
  }
}

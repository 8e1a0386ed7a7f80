/**
 * The decision service: plan -> gather facts -> decide -> consume / learn -> log. It owns the
 * I/O around the pure engine and turns every failure into a fact the engine fails closed on.
 */
import type { Logger } from 'pino'
import { authTimeOf } from './engine/assurance.js'
import { decide, type DecideOptions, type Decision } from './engine/decide.js'
import type { Facts, GeoFact, HistoryFact, OnceOnlyFact, DecisionRequest, Psd2Fact } from './engine/model.js'
import type { CompiledPolicySet, Plan } from './engine/policy-set.js'
import { consumeTtl, isEmptyUpdate, type HistoryStore, type SubjectKey } from './signals/history.js'
import type { GeoLookup } from './signals/geo.js'
import type { PolicyHolder } from './policy/load.js'
import { uuidv7 } from './ids.js'

export interface DecisionServiceDeps {
  policies: PolicyHolder
  geo: GeoLookup
  history: HistoryStore
  logger: Logger
  /** Milliseconds since the epoch; injected so tests control time. */
  now: () => number
  /** Called with every decision (metrics, audit). */
  onDecision?: (record: DecisionRecord) => void
  onStoreError?: (operation: string, error: Error) => void
}

export interface DecisionRecord {
  decisionId: string
  /** The revision of the policy set that decided. */
  policyRevision: string
  request: DecisionRequest
  decision: Decision
  durationMs: number
  at: number
  /** What the engine decided with, for the audit record (replay): geo and IP lists `skipped`/null when not looked up. */
  facts: Pick<Facts, 'history' | 'onceOnly' | 'psd2'> & { geo: GeoFact | { status: 'skipped' }, ipLists: string[] | null }
  /** Context keys the audit record drops (`assurance.audit.redactContext`). */
  redactContext: readonly string[]
}

export interface DecisionResult {
  decisionId: string
  policyRevision: string
  decision: Decision
}

export interface DecisionService {
  /** `{ trace: true }` returns the engine's trace on the decision (explanations, coverage); the HTTP route does not ask. */
  decide: (request: DecisionRequest, options?: DecideOptions) => Promise<DecisionResult>
  /**
   * A step-up this service asked for failed (`auth.step_up_failed`): remembered for the lockout of
   * the policies that have one (docs/psd2.md). Rejects when the store cannot record it.
   */
  recordStepUpFailure: (subject: SubjectKey) => Promise<void>
}

/** The widest lockout window of a set (0 = no policy locks out), computed once per set. */
const lockoutWindows = new WeakMap<CompiledPolicySet, number>()
export function widestLockout (set: CompiledPolicySet): number {
  let w = lockoutWindows.get(set)
  if (w === undefined) {
    w = 0
    for (const p of set.policies) if (p.lockout && p.lockout.window > w) w = p.lockout.window
    lockoutWindows.set(set, w)
  }
  return w
}

/** A fixed phrase for callers; the raw error goes to the log only (it may name internals). */
const describe = (err: unknown): string => {
  const message = (err as Error)?.message ?? String(err)
  return /timed? ?out/i.test(message) ? 'timed out' : 'unavailable'
}

export function createDecisionService (deps: DecisionServiceDeps): DecisionService {
  const { logger } = deps

  const storeError = (operation: string, err: unknown): void => {
    deps.onStoreError?.(operation, err as Error)
    logger.warn({ operation, err: String((err as Error)?.message ?? err).split('\n')[0] }, 'history store error: failing closed')
  }

  /** The PSD2 state the plan's payment and lockout policies read; a store failure is a fact they fail closed on. */
  const readPsd2 = async (plan: Plan, request: DecisionRequest, key: SubjectKey, now: number, authTime: number | undefined): Promise<Psd2Fact> => {
    const needs = plan.needs.psd2!
    const tx = request.transaction
    try {
      const state = await deps.history.psd2.read(key, {
        ...(needs.bound && tx && authTime !== undefined && request.tokenVerified === true ? { linked: { authTime, txHash: tx.hash } } : {}),
        ...(needs.payee && tx ? { payeeId: tx.payeeId } : {}),
        ...(needs.lockoutWindow > 0 ? { lockoutWindow: needs.lockoutWindow } : {})
      }, now)
      return { status: 'found', state }
    } catch (err) {
      storeError('psd2.read', err)
      return { status: 'unavailable', reason: `history store ${describe(err)}` }
    }
  }

  return {
    async recordStepUpFailure (subject) {
      const window = widestLockout(deps.policies.current)
      if (window === 0) return
      try {
        await deps.history.psd2.recordFailure(subject, deps.now() / 1000, window)
      } catch (err) {
        // Counted here, logged and answered by the caller (the /events route): nothing fails closed.
        deps.onStoreError?.('recordFailure', err as Error)
        throw err
      }
    },

    async decide (request, options) {
      const started = performance.now()
      const nowMs = deps.now()
      const now = nowMs / 1000
      const set = deps.policies.current
      const plan = set.plan(request)
      const key: SubjectKey = { tenant: request.tenant, subject: request.subjectId }

      // Geo is local and cheap; learning a location needs it whenever history is read.
      let geo: GeoFact = { status: 'none' }
      const geoLooked = request.ip !== undefined && (plan.needs.geo || plan.needs.history)
      if (geoLooked) geo = deps.geo.lookup(request.ip!)
      const ipListsLooked = request.ip !== undefined && plan.needs.ipLists
      const ipLists = ipListsLooked ? set.ipLists.lookup(request.ip!) : []

      const authTime = authTimeOf(request.claims)
      const wantOnce = plan.needs.onceOnly && authTime !== undefined
      let history: HistoryFact = { status: 'skipped' }
      let onceOnly: OnceOnlyFact = { status: 'skipped' }
      if (plan.needs.history || wantOnce) {
        try {
          const read = await deps.history.read(key, {
            history: plan.needs.history,
            deviceId: request.deviceId,
            country: geo.status === 'found' ? geo.location.country : undefined,
            resource: request.resource,
            authTime: wantOnce ? authTime : undefined,
            onceOnlyTtl: wantOnce ? consumeTtl(set.assurance.clockSkew) : undefined
          }, now)
          if (read.snapshot) history = { status: 'found', snapshot: read.snapshot }
          if (read.consumed !== undefined) onceOnly = { status: 'found', consumed: read.consumed }
          if (read.onceOnlyUnavailable !== undefined) onceOnly = { status: 'unavailable', reason: read.onceOnlyUnavailable }
        } catch (err) {
          storeError('read', err)
          const reason = `history store ${describe(err)}`
          if (plan.needs.history) history = { status: 'unavailable', reason }
          if (wantOnce) onceOnly = { status: 'unavailable', reason }
        }
      }

      const facts: Facts = { request, geo, history, ipLists, onceOnly }
      if (plan.needs.psd2) facts.psd2 = await readPsd2(plan, request, key, now, authTime)
      let decision = decide(set, plan, facts, now, options)

      if (decision.decision === 'allow' && decision.consumes) {
        // The once-only authentication is used up atomically; losing the race means step-up.
        let retry: OnceOnlyFact | undefined
        try {
          const first = await deps.history.consume(key, decision.consumes.authTime, now, consumeTtl(set.assurance.clockSkew))
          if (!first) retry = { status: 'found', consumed: true }
        } catch (err) {
          storeError('consume', err)
          retry = { status: 'unavailable', reason: `history store ${describe(err)}` }
        }
        if (retry) { decision = decide(set, plan, { ...facts, onceOnly: retry }, now, options); facts.onceOnly = retry }
      }

      if (decision.decision === 'allow' && decision.psd2) {
        // PSD2 writes are the gate: spending the linked SCA (or counting the exemption) atomically
        // decides which of concurrent requests is allowed; a lost race or a store failure decides again.
        let retry: Psd2Fact | undefined
        const state = facts.psd2?.status === 'found' ? facts.psd2.state : undefined
        const { sca, exempt } = decision.psd2
        try {
          if (sca) {
            if (!(await deps.history.psd2.completeSca(key, sca, now)) && state) retry = { status: 'found', state: { ...state, linkedConsumed: true } }
          } else if (exempt) {
            const counted = await deps.history.psd2.exempt(key, exempt.limit ? { cents: exempt.cents, limit: exempt.limit } : { cents: exempt.cents }, now)
            if (!counted && state && exempt.limit) retry = { status: 'found', state: { ...state, exempted: { count: exempt.limit.count, cents: exempt.limit.cents } } }
            else if (!counted) retry = { status: 'unavailable', reason: 'exemption not counted' }
          }
        } catch (err) {
          storeError(sca ? 'completeSca' : 'exempt', err)
          retry = { status: 'unavailable', reason: `history store ${describe(err)}` }
        }
        if (retry) { facts.psd2 = retry; decision = decide(set, plan, facts, now, options) }
      }
      if (decision.decision === 'allow' && decision.psd2?.clearFailures === true) {
        try {
          await deps.history.psd2.clearFailures(key, now)
        } catch (err) {
          storeError('clearFailures', err) // the failures then age out with their window
        }
      }

      if (decision.decision === 'allow' && decision.learn && !isEmptyUpdate(decision.learn)) {
        try {
          await deps.history.record(key, decision.learn, now, set.learning.retentionDays)
        } catch (err) {
          storeError('record', err) // not learning only ever means more step-ups
        }
      }

      const decisionId = uuidv7(nowMs)
      const durationMs = performance.now() - started
      const policyRevision = set.revision
      // Ids and the outcome only: the audit record carries the rest (request, facts, requirement).
      logger.info({
        decisionId,
        decision: decision.decision,
        event: decision.event,
        policyRevision,
        tenant: request.tenant,
        subject: request.subjectId,
        action: request.action,
        policies: decision.policies
      }, 'decision')
      deps.onDecision?.({
        decisionId, policyRevision, request, decision, durationMs, at: nowMs,
        facts: { geo: geoLooked || request.ip === undefined ? geo : { status: 'skipped' }, history, ipLists: ipListsLooked || request.ip === undefined ? ipLists : null, onceOnly: facts.onceOnly, ...(facts.psd2 ? { psd2: facts.psd2 } : {}) },
        redactContext: set.assurance.audit.redactContext
      })
      return { decisionId, policyRevision, decision }
    }
  }
}

/** Prometheus metrics (`GET /metrics`), on a registry per app so tests and instances stay apart. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { ErrorCodes } from './errors.js'
import type { DecisionRecord } from './service.js'

export interface Metrics {
  registry: Registry
  recordDecision: (record: DecisionRecord) => void
  storeError: (operation: string, error: Error) => void
  /** One count per reload outcome (applied, unchanged, invalid, removal_refused). */
  reload: (outcome: string, policies: number) => void
  policiesLoaded: (count: number) => void
  /** A request refused with a 4xx, by its stable error code (src/errors.ts). */
  rejected?: (code: string, status: number) => void
  /** Reads the geo database's build date at scrape time (the database may load after start). */
  watchGeo?: (describe: () => { buildEpoch?: number }) => void
}

/** The outcomes `reload()` is called with (positional label values, whatever the label's name). */
const RELOAD_OUTCOMES = ['ok', 'refused']

/** The audit events each decision kind can carry: the decision counter starts with these at 0. */
const DECISION_EVENTS = [['allow', 'auth.allowed'], ['allow', 'auth.step_up_skipped'], ['step_up', 'auth.step_up_initiated'], ['deny', 'auth.access_denied']] as const

export function createMetrics (): Metrics {
  const registry = new Registry()
  // Standard names (process_*, nodejs_*), so stock Node.js dashboards work unchanged.
  collectDefaultMetrics({ register: registry })
  const decisions = new Counter({ name: 'stepup_decisions_total', help: 'Decisions by outcome and audit event.', labelNames: ['decision', 'event'], registers: [registry] })
  const hits = new Counter({ name: 'stepup_policy_hits_total', help: 'Fired enforced policies by id and outcome.', labelNames: ['policy', 'outcome'], registers: [registry] })
  const reportOnly = new Counter({ name: 'stepup_report_only_hits_total', help: 'Fired report-only policies by id and the decision they would have made.', labelNames: ['policy', 'decision'], registers: [registry] })
  const latency = new Histogram({
    name: 'stepup_decision_duration_seconds',
    help: 'Time to decide, from the normalized request to the decision (history round trips included).',
    // Most decisions take tens of microseconds in memory: the low buckets resolve them.
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry]
  })
  const storeErrors = new Counter({ name: 'stepup_history_errors_total', help: 'History store failures by operation (reads and payment checks fail closed).', labelNames: ['operation', 'kind'], registers: [registry] })
  const reloads = new Counter({ name: 'stepup_policy_reloads_total', help: 'Policy reloads by outcome: applied, unchanged, invalid (refused: does not validate or passes a limit), removal_refused (removes policies without confirmation).', labelNames: ['outcome'], registers: [registry] })
  const loaded = new Gauge({ name: 'stepup_policies_loaded', help: 'Policies in the set that serves.', registers: [registry] })
  const rejections = new Counter({ name: 'stepup_rejected_requests_total', help: 'Requests refused with a 4xx, by error code and status.', labelNames: ['code', 'status'], registers: [registry] })
  let geoDescribe: (() => { buildEpoch?: number }) | undefined
  const geoBuild = new Gauge({
    name: 'stepup_geo_database_build_timestamp_seconds',
    help: 'Build date of the geo database that serves (seconds since the epoch; 0 while none is loaded).',
    registers: [registry],
    collect () { this.set(geoDescribe?.().buildEpoch ?? 0) }
  })
  geoBuild.set(0)

  // Counters present at 0 from the start, so rates and alerts work before the first event.
  for (const [decision, event] of DECISION_EVENTS) decisions.labels(decision, event).inc(0)
  for (const [code, { status }] of Object.entries(ErrorCodes)) if (status >= 400 && status < 500) rejections.labels(code, String(status)).inc(0)
  for (const operation of ['read', 'record', 'consume', 'psd2.read', 'completeSca', 'exempt', 'recordFailure', 'clearFailures']) for (const kind of ['timeout', 'error']) storeErrors.labels(operation, kind).inc(0)
  for (const outcome of RELOAD_OUTCOMES) reloads.labels(outcome).inc(0)

  // Labelled children are looked up once per label set: prom-client hashes the labels on every inc().
  type Child = { inc: () => void }
  const children = new Map<string, Child>()
  const child = (key: string, make: () => Child): Child => {
    let c = children.get(key)
    if (c === undefined) { c = make(); children.set(key, c) }
    return c
  }

  return {
    registry,
    recordDecision ({ decision, durationMs }) {
      child(`d\u0000${decision.decision}\u0000${decision.event}`, () => decisions.labels(decision.decision, decision.event)).inc()
      latency.observe(durationMs / 1000)
      // Reasons come grouped by policy (one per fired trigger, one outcome per policy): count each policy once.
      let previous: string | undefined
      for (const r of decision.reasons) {
        if (r.policy === previous) continue
        previous = r.policy
        child(`h\u0000${r.policy}\u0000${r.outcome}`, () => hits.labels(r.policy, r.outcome)).inc()
      }
      for (const r of decision.reportOnly) child(`r\u0000${r.policy}\u0000${r.decision}`, () => reportOnly.labels(r.policy, r.decision)).inc()
    },
    storeError (operation, error) {
      storeErrors.inc({ operation, kind: /timed? ?out/i.test(error.message) ? 'timeout' : 'error' })
    },
    reload (outcome, policies) {
      reloads.inc({ outcome })
      if (outcome === 'applied') loaded.set(policies)
    },
    policiesLoaded (count) { loaded.set(count) },
    rejected (code, status) {
      if (!/^[a-z_]{1,40}$/.test(code)) code = 'other'
      child(`x\u0000${code}\u0000${status}`, () => rejections.labels(code, String(status))).inc()
    },
    watchGeo (describe) { geoDescribe = describe }
  }
}

/**
 * Fuzzes POST /decide through app.inject and checks, for every request:
 *   - no 5xx, and every 4xx is `{ error, message }`;
 *   - a 4xx never changes stored state (no history write, no audit record);
 *   - a valid request is answered 200 with a decision;
 *   - no crash and no unhandled rejection while the run lasts;
 *   - no request takes over 100 ms when sent alone (each request is sent alone; the slowest
 *     are sent again, alone, and judged on their best time, so a GC pause or a busy machine does
 *     not count as a stall, while a real one — seconds in a regex — still does).
 * Used by test/fuzz/decide.fuzz.test.ts (bounded) and scripts/fuzz.ts (for minutes).
 */
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { createMemoryAuditLog, type AuditLog } from '../../src/audit/audit-log.js'
import { compilePolicies } from '../../src/policy/compile.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { readPolicyFolder } from '../../src/policy/source.js'
import type { GeoLookup } from '../../src/signals/geo.js'
import type { HistoryStore } from '../../src/signals/history.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { EXAMPLE_POLICIES, NOW_MS } from '../helpers/app.js'
import { fuzzRequest, type FuzzRequest } from './requests.js'

/** Beside the example policies: conditions over caller data, so hostile values reach CEL. */
export const FUZZ_POLICY = `
policies:
  - id: fuzz-conditions
    description: Conditions that read what the caller sends.
    actions: ["fuzz.**", "payments.**"]
    when:
      - condition: has(context.tags) && context.tags.exists(t, t == 'vip')
      - condition: has(context.currency) && context.currency.matches('^[A-Z]{3}$') && context.currency != 'EUR'
      - condition: has(context.extra) && size(context.extra) > 3
    require: { aal: 2, maxAge: 15m }
`

/** Past this, a request sent alone is a stall. */
export const STALL_MS = 100

export interface Violation { property: string, label: string, detail: string }

export interface DecideFuzzReport {
  seed: number
  requests: number
  statuses: Record<string, Record<string, number>>
  /** The slowest request's first time, and its label. */
  maxMs: number
  maxLabel: string
  p99Ms: number
  /** Requests over STALL_MS the first time, sent again alone: their best of three. */
  retried: Array<{ label: string, firstMs: number, bestMs: number }>
  /** The largest best-of-three time (0 when no request was over STALL_MS). */
  worstBestMs: number
  violations: Violation[]
  seconds: number
}

interface Counters { writes: number }

function countingHistory (inner: HistoryStore, c: Counters): HistoryStore {
  return {
    kind: inner.kind,
    read: (...a) => inner.read(...a),
    record: (...a) => { c.writes++; return inner.record(...a) },
    consume: (...a) => { c.writes++; return inner.consume(...a) },
    psd2: {
      read: (...a) => inner.psd2.read(...a),
      exempt: (...a) => { c.writes++; return inner.psd2.exempt(...a) },
      completeSca: (...a) => { c.writes++; return inner.psd2.completeSca(...a) },
      recordFailure: (...a) => { c.writes++; return inner.psd2.recordFailure(...a) },
      clearFailures: (...a) => { c.writes++; return inner.psd2.clearFailures(...a) }
    },
    ping: () => inner.ping(),
    close: () => inner.close()
  }
}

function countingAudit (inner: AuditLog, c: Counters): AuditLog {
  return {
    kind: inner.kind,
    append: r => { c.writes++; inner.append(r) },
    rememberStepUp: (id, ref) => { c.writes++; inner.rememberStepUp(id, ref) },
    findStepUp: id => inner.findStepUp(id),
    claimOutcome: id => { c.writes++; return inner.claimOutcome(id) },
    query: f => inner.query(f),
    flush: () => inner.flush(),
    close: () => inner.close()
  }
}

export async function fuzzApp (geo: GeoLookup, counters: Counters): Promise<FastifyInstance> {
  const sources = await readPolicyFolder(EXAMPLE_POLICIES)
  sources.policies.push({ file: 'fuzz.yaml', text: FUZZ_POLICY })
  const { set, problems } = compilePolicies(sources)
  if (!set) throw new Error(`the fuzz policies do not compile: ${JSON.stringify(problems)}`)
  const app = await buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new PolicyHolder(set, () => NOW_MS),
    geo,
    history: countingHistory(createMemoryHistoryStore({ maxSubjects: 10_000 }), counters),
    audit: countingAudit(createMemoryAuditLog({ maxEntries: 1000 }), counters),
    logger: pino({ level: 'silent' }),
    now: () => NOW_MS,
    maxEventLoopDelayMs: 0
  })
  await app.ready()
  return app
}

const send = (app: FastifyInstance, r: FuzzRequest): Promise<LightMyRequestResponse> =>
  app.inject({
    method: 'POST',
    url: '/decide',
    headers: { 'content-type': r.contentType ?? 'application/json' },
    payload: r.raw ?? JSON.stringify(r.body)
  })

const isErrorBody = (text: string): boolean => {
  try {
    const b = JSON.parse(text) as Record<string, unknown>
    return typeof b.error === 'string' && typeof b.message === 'string' && b.message.length > 0
  } catch {
    return false
  }
}

export interface DecideFuzzOptions {
  geo: GeoLookup
  seed: number
  /** Requests to send (the run also ends at `deadline`, ms since the epoch, when given). */
  runs: number
  deadline?: number
  onBatch?: (sent: number) => void
}

export async function fuzzDecide (options: DecideFuzzOptions): Promise<DecideFuzzReport> {
  const started = performance.now()
  const counters: Counters = { writes: 0 }
  const app = await fuzzApp(options.geo, counters)
  const violations: Violation[] = []
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  process.on('uncaughtException', onUnhandled)

  const statuses: Record<string, Record<string, number>> = {}
  const times = new Float64Array(options.runs)
  const slow: Array<{ request: FuzzRequest, ms: number }> = []
  let maxMs = 0
  let maxLabel = ''
  let sent = 0
  const BATCH = 500
  try {
    for (let batch = 0; sent < options.runs; batch++) {
      if (options.deadline !== undefined && Date.now() > options.deadline) break
      const requests = fc.sample(fuzzRequest, { seed: options.seed + batch, numRuns: Math.min(BATCH, options.runs - sent) })
      for (const r of requests) {
        const before = counters.writes
        const t0 = performance.now()
        const res = await send(app, r)
        const ms = performance.now() - t0
        times[sent++] = ms
        if (ms > maxMs) { maxMs = ms; maxLabel = `${r.kind}: ${r.label}` }
        if (ms > STALL_MS) slow.push({ request: r, ms })
        const byKind = statuses[r.kind] ??= {}
        byKind[res.statusCode] = (byKind[res.statusCode] ?? 0) + 1

        const where = `${r.kind}: ${r.label}`
        if (res.statusCode >= 500) {
          violations.push({ property: 'no 5xx', label: where, detail: `HTTP ${res.statusCode}: ${res.body.slice(0, 200)}` })
        } else if (res.statusCode >= 400) {
          if (!isErrorBody(res.body)) violations.push({ property: 'every 4xx is { error, message }', label: where, detail: res.body.slice(0, 200) })
          if (counters.writes !== before) violations.push({ property: 'a 4xx changes no stored state', label: where, detail: `HTTP ${res.statusCode}, ${counters.writes - before} writes` })
        } else if (res.statusCode === 200) {
          const decision = (JSON.parse(res.body) as { decision?: unknown }).decision
          if (decision !== 'allow' && decision !== 'step_up' && decision !== 'deny') violations.push({ property: 'a 200 carries a decision', label: where, detail: res.body.slice(0, 200) })
        }
        if (r.kind === 'valid' && res.statusCode !== 200) {
          violations.push({ property: 'a valid request is answered', label: JSON.stringify(r.body).slice(0, 300), detail: `HTTP ${res.statusCode}: ${res.body.slice(0, 200)}` })
        }
      }
      options.onBatch?.(sent)
    }

    // The slowest requests again, each alone, best of three.
    slow.sort((a, b) => b.ms - a.ms)
    const retried: DecideFuzzReport['retried'] = []
    for (const { request, ms } of slow.slice(0, 10)) {
      let best = Infinity
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now()
        await send(app, request)
        best = Math.min(best, performance.now() - t0)
      }
      retried.push({ label: `${request.kind}: ${request.label}`, firstMs: ms, bestMs: best })
    }
    const worstBestMs = retried.reduce((m, r) => Math.max(m, r.bestMs), 0)
    // Let any rejection that was left dangling surface before judging.
    await new Promise(resolve => setTimeout(resolve, 50))
    for (const err of unhandled) violations.push({ property: 'no unhandled rejection or exception', label: '', detail: String((err as Error)?.stack ?? err).slice(0, 500) })
    const sorted = times.subarray(0, sent).sort()
    return {
      seed: options.seed,
      requests: sent,
      statuses,
      maxMs,
      maxLabel,
      p99Ms: sorted[Math.floor(0.99 * (sent - 1))] ?? 0,
      retried,
      worstBestMs,
      violations,
      seconds: (performance.now() - started) / 1000
    }
  } finally {
    process.off('unhandledRejection', onUnhandled)
    process.off('uncaughtException', onUnhandled)
    await app.close()
  }
}

/** Violations grouped by property: a count and the first few examples. */
export function summarizeViolations (violations: Violation[], examples = 3): string[] {
  const groups = new Map<string, Violation[]>()
  for (const v of violations) groups.set(v.property, [...(groups.get(v.property) ?? []), v])
  return [...groups].map(([property, list]) =>
    `${property}: ${list.length} violation${list.length === 1 ? '' : 's'}, e.g.\n`
    + list.slice(0, examples).map(v => `    - ${v.label} -> ${v.detail}`).join('\n'))
}

/**
 * Policy test suites (`*.test.yaml`): requests with optional seeded history, run through the
 * real service with an in-memory store and a fixed clock, compared with what they expect.
 * The engine's own case files and `stepup test` use this one format and runner. Each request
 * goes through the decision contract (src/contract) exactly as POST /decide does: a request the
 * service would refuse with 400 fails its case, unless the case expects that `error`.
 */
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { pino } from 'pino'
import { parse as parseYaml, stringify } from 'yaml'
import { isDeepStrictEqual } from 'node:util'
import { PolicyLoadError } from '../errors.js'
import type { GeoFact, Location } from '../engine/model.js'
import { compilePolicies } from '../policy/compile.js'
import { loadPolicySet, PolicyHolder } from '../policy/load.js'
import { toSeconds } from '../policy/duration.js'
import type { GeoLookup } from '../signals/geo.js'
import type { HistoryStore, SubjectKey } from '../signals/history.js'
import { HOUR } from '../engine/units.js'
import { createMemoryHistoryStore } from '../signals/memory-history.js'
import { createDecisionService } from '../service.js'
import { hashDevice, parseDecideRequest } from '../contract/index.js'
import { ApiError } from '../errors.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import type { Decision } from '../engine/decide.js'

export const DEFAULT_NOW = '2026-11-22T12:00:00Z'

type Rel = string | number

interface SeedLocation { ip?: string, latitude?: number, longitude?: number, accuracyKm?: number, country?: string, city?: string, at: Rel }
export interface Seed {
  devices?: Record<string, Rel>
  countries?: Record<string, Rel>
  resources?: Record<string, Rel>
  lastLocation?: SeedLocation
  consumed?: Rel[]
}

export interface Step {
  name?: string
  request: Record<string, unknown>
  /** Advance the clock before this step (e.g. 10m). */
  after?: Rel
  /** Simulate failures: the history store or the geo database is down for this step. */
  unavailable?: Array<'history' | 'geo'>
  /** Which service instance answers (1 or 2): instances share the history store, as replicas share Redis. */
  instance?: 1 | 2
  /** Then report that the step-up failed, as POST /events would (it counts towards lockouts). */
  outcome?: 'auth.step_up_failed'
  expect: Record<string, unknown>
}

export interface Case extends Partial<Step> {
  name: string
  history?: Seed
  tenant?: string
  steps?: Step[]
}

export interface Suite {
  name?: string
  /** Inline policy file content, or `policiesDir` relative to the suite file. */
  policies?: unknown
  policiesDir?: string
  lists?: Record<string, string>
  now?: string
  cases: Case[]
}

export interface CaseResult {
  suite: string
  name: string
  ok: boolean
  failures: string[]
  /** The decisions the case's steps produced, with their trace, in order (a step refused as a bad request has none): for coverage. */
  decisions: Decision[]
}

/** Relative times: `-10m` (ago), `+5m`, a number of seconds relative to now, or an ISO date. */
export function resolveTime (value: Rel, now: number): number {
  if (typeof value === 'number') return now + value
  const m = /^([+-])(.+)$/.exec(value)
  if (m) return now + (m[1] === '-' ? -1 : 1) * toSeconds(m[2]!)
  const t = Date.parse(value)
  if (Number.isNaN(t)) throw new Error(`not a time: ${value}`)
  return t / 1000
}

const RELATIVE_CLAIMS = ['auth_time', 'iat', 'exp']

/**
 * Relative claim times resolved. A `token` object stands for the claims of a token the service
 * verified (a suite has no issuer keys): it becomes `claims`, and the step marks them verified.
 */
function resolveRequest (request: unknown, now: number): { body: unknown, verified: boolean } {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) return { body: request, verified: false }
  const { token, ...rest } = request as Record<string, unknown>
  const verified = token !== null && typeof token === 'object' && !Array.isArray(token)
  if (verified && rest.claims !== undefined) throw new ApiError('invalid_request', 'token: send either token or claims, not both')
  const claims = (verified ? token : rest.claims) as Record<string, unknown> | undefined
  const body = verified ? { ...rest } : (token === undefined ? rest : request as Record<string, unknown>)
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return { body, verified }
  const out = { ...claims }
  for (const k of RELATIVE_CLAIMS) if (typeof out[k] === 'string') out[k] = resolveTime(out[k] as string, now)
  return { body: { ...body, claims: out }, verified }
}

/** Subset comparison: every key in `expected` must match; arrays match element-wise and in length. */
export function diff (expected: unknown, actual: unknown, path = ''): string[] {
  if (expected === null || typeof expected !== 'object') {
    return isDeepStrictEqual(expected, actual) ? [] : [`${path || '(value)'}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`]
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: expected a list, got ${JSON.stringify(actual)}`]
    if (expected.length !== actual.length) return [`${path}: expected ${expected.length} item(s), got ${actual.length}: ${JSON.stringify(actual)}`]
    return expected.flatMap((e, i) => diff(e, actual[i], `${path}[${i}]`))
  }
  if (actual === null || typeof actual !== 'object') return [`${path}: expected an object, got ${JSON.stringify(actual)}`]
  return Object.entries(expected).flatMap(([k, v]) => {
    const a = (actual as Record<string, unknown>)[k]
    if (v === null) return a === undefined ? [] : [`${path ? path + '.' : ''}${k}: expected absent, got ${JSON.stringify(a)}`]
    return diff(v, a, path ? `${path}.${k}` : k)
  })
}

/** How long a seeded once-only authentication stays consumed (seconds): longer than any case runs. */
const SEEDED_CONSUME_TTL = HOUR

async function seed (store: HistoryStore, key: SubjectKey, history: Seed, geo: GeoLookup, now: number): Promise<void> {
  const { tenant, subject } = key
  const retention = 400
  for (const [fp, at] of Object.entries(history.devices ?? {})) await store.record(key, { deviceId: hashDevice(fp, tenant, subject) }, resolveTime(at, now), retention)
  for (const [c, at] of Object.entries(history.countries ?? {})) await store.record(key, { country: c }, resolveTime(at, now), retention)
  for (const [r, at] of Object.entries(history.resources ?? {})) await store.record(key, { resource: r }, resolveTime(at, now), retention)
  const l = history.lastLocation
  if (l) {
    let location: Location | undefined
    if (l.ip !== undefined) {
      const fact = geo.lookup(l.ip)
      if (fact.status !== 'found') throw new Error(`history.lastLocation.ip ${l.ip} has no location in the geo database`)
      location = fact.location
    } else {
      location = { latitude: l.latitude ?? 0, longitude: l.longitude ?? 0, accuracyKm: l.accuracyKm ?? 10, ...(l.country ? { country: l.country } : {}), ...(l.city ? { city: l.city } : {}) }
    }
    await store.record(key, { location }, resolveTime(l.at, now), retention)
  }
  for (const at of history.consumed ?? []) await store.consume(key, resolveTime(at, now), now, SEEDED_CONSUME_TTL)
}

/** A store whose calls fail, as when Redis is down. */
const failingStore = (inner: HistoryStore): HistoryStore => ({
  ...inner,
  read: async () => { throw new Error('connection is closed (simulated outage)') },
  record: async () => { throw new Error('connection is closed (simulated outage)') },
  consume: async () => { throw new Error('connection is closed (simulated outage)') },
  psd2: {
    read: async () => { throw new Error('connection is closed (simulated outage)') },
    exempt: async () => { throw new Error('connection is closed (simulated outage)') },
    completeSca: async () => { throw new Error('connection is closed (simulated outage)') },
    recordFailure: async () => { throw new Error('connection is closed (simulated outage)') },
    clearFailures: async () => { throw new Error('connection is closed (simulated outage)') }
  },
  ping: async () => false
})

export async function loadSuiteSet (suite: Suite, suiteFile: string): Promise<CompiledPolicySet> {
  if (suite.policiesDir !== undefined) return (await loadPolicySet(resolve(dirname(suiteFile), suite.policiesDir))).set
  const text = stringify(suite.policies ?? { policies: [] })
  const lists = Object.entries(suite.lists ?? {}).map(([name, t]) => ({ name, file: `lists/${name}.txt`, text: t }))
  const { set, problems } = compilePolicies({ policies: [{ file: `${suiteFile}#policies`, text }], lists })
  if (!set) throw new PolicyLoadError(problems.filter(p => p.severity === 'error'))
  return set
}

export interface RunOptions {
  /**
   * The history stores of a case's two service instances (`instance: 1 | 2`), fresh for each
   * case: by default one in-memory store both share. A test passes two clients of one Redis.
   */
  stores?: () => Promise<{ stores: [HistoryStore, HistoryStore], close: () => Promise<void> }>
}

export async function runSuiteFile (file: string, geo: GeoLookup, options: RunOptions = {}): Promise<CaseResult[]> {
  const suite = parseYaml(await readFile(file, 'utf8')) as Suite
  const name = suite.name ?? file
  const set = await loadSuiteSet(suite, file)
  const results: CaseResult[] = []
  for (const c of suite.cases) results.push(await runCase({ suite: name, case: c, set, now: suite.now ?? DEFAULT_NOW, geo, ...options }))
  return results
}

const memoryStores: NonNullable<RunOptions['stores']> = async () => {
  const store = createMemoryHistoryStore({ maxSubjects: 1000 })
  return { stores: [store, store], close: async () => {} }
}

/** One case of a suite: its name, the compiled set, the suite's clock (ISO time) and the geo lookup. */
export interface CaseRun extends RunOptions {
  suite: string
  case: Case
  set: CompiledPolicySet
  now: string
  geo: GeoLookup
}

export async function runCase (run: CaseRun): Promise<CaseResult> {
  const { stores, close } = await (run.stores ?? memoryStores)()
  try {
    return await runSteps(run, stores)
  } finally {
    await close()
  }
}

async function runSteps ({ suite, case: c, set, now: nowIso, geo }: CaseRun, stores: [HistoryStore, HistoryStore]): Promise<CaseResult> {
  let nowMs = Date.parse(nowIso)
  const store = stores[0]
  const holder = new PolicyHolder(set, () => nowMs)
  const failures: string[] = []
  const decisions: Decision[] = []
  const { name: _name, history: _history, tenant: _tenant, steps: _steps, ...single } = c
  const steps: Step[] = c.steps ?? [{ ...single, request: c.request ?? {}, expect: c.expect ?? {} }]
  if (c.history) {
    const first = steps[0]!.request
    const subject = ((first.subject as { id?: string } | undefined)?.id ?? (first.claims as { sub?: string } | undefined)?.sub ?? (first.token as { sub?: string } | undefined)?.sub) ?? ''
    await seed(store, { tenant: (first.tenant as string | undefined) ?? c.tenant, subject }, c.history, geo, nowMs / 1000)
  }
  for (const [i, step] of steps.entries()) {
    if (step.instance !== undefined && step.instance !== 1 && step.instance !== 2) {
      failures.push(`step ${i + 1}: instance must be 1 or 2 (got ${JSON.stringify(step.instance)})`)
      continue
    }
    if (step.outcome !== undefined && step.outcome !== 'auth.step_up_failed') {
      failures.push(`step ${i + 1}: outcome must be auth.step_up_failed (a completed step-up is shown by the next request's token)`)
      continue
    }
    if (step.after !== undefined) nowMs = resolveTime(step.after, nowMs / 1000) * 1000
    const down = new Set(step.unavailable ?? [])
    const stepGeo: GeoLookup = down.has('geo')
      ? { ...geo, ready: false, lookup: (): GeoFact => ({ status: 'unavailable', reason: 'no geo database (simulated)' }) }
      : geo
    const service = createDecisionService({
      policies: holder,
      geo: stepGeo,
      history: down.has('history') ? failingStore(stores[(step.instance ?? 1) - 1]!) : stores[(step.instance ?? 1) - 1]!,
      logger: pino({ level: 'silent' }),
      now: () => nowMs
    })
    const label = steps.length > 1 ? `step ${i + 1}${step.name ? ` (${step.name})` : ''}: ` : ''
    let request
    try {
      const { body, verified } = resolveRequest(step.request, nowMs / 1000)
      request = parseDecideRequest(body, set.assurance)
      if (verified) request.tokenVerified = true
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      const expectsError = step.expect !== null && typeof step.expect === 'object' && 'error' in step.expect
      if (!expectsError) failures.push(`${label}invalid request (POST /decide would answer 400 ${err.code}): ${err.message}`)
      else for (const f of diff(step.expect, { error: err.code, message: err.message })) failures.push(label + f)
      continue
    }
    const { decision } = await service.decide(request, { trace: true })
    decisions.push(decision)
    if (step.outcome === 'auth.step_up_failed') {
      if (decision.decision !== 'step_up') failures.push(`${label}outcome: a step-up failure can only follow a step_up answer (got ${decision.decision})`)
      // As POST /events answers it: a failure the store cannot record does not count towards the
      // lockout, and the run goes on.
      else await service.recordStepUpFailure({ tenant: request.tenant, subject: request.subjectId }).catch(() => {})
    }
    const actual = JSON.parse(JSON.stringify(decision)) as Record<string, unknown>
    for (const f of diff(step.expect, actual)) failures.push(label + f)
  }
  return { suite, name: c.name, ok: failures.length === 0, failures, decisions }
}

/**
 * Builds the real app for HTTP tests: the example policies (or another folder), the geo
 * lookup the test file opened once, the memory history store and a fixed clock.
 */
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { pino, type Logger } from 'pino'
import { buildApp, type AppDeps } from '../../src/app.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import type { CompiledPolicySet } from '../../src/engine/policy-set.js'
import type { HistoryStore } from '../../src/signals/history.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'

/** The example policies shipped with the project. */
export const EXAMPLE_POLICIES = fileURLToPath(new URL('../../policies', import.meta.url))
/** Small policy folders written for the HTTP tests. */
export const FIXTURE_POLICIES = fileURLToPath(new URL('../fixtures/http-policies', import.meta.url))

/** The fixed "now" of the HTTP tests (milliseconds), and the same in seconds for `auth_time`. */
export const NOW_MS = Date.parse('2026-11-22T12:00:00Z')
export const NOW_S = Math.floor(NOW_MS / 1000)

export const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

export interface TestAppOptions {
  /** The geo lookup the test file opened once (`openGeoLookup({})`), or a getter. */
  geo: AppDeps['geo']
  /** Policy folder; default the example policies. */
  policiesDir?: string
  /** Default: a new memory store. Pass one to share it between apps. */
  history?: HistoryStore
  /** Milliseconds since the epoch; default a fixed NOW_MS. */
  now?: () => number
  apiKeys?: string[]
  adminApiKeys?: string[]
  /** Default: silent. */
  logger?: Logger
  /** Load shedding is off by default so a slow CI machine does not get 503s. */
  maxEventLoopDelayMs?: number
}

export interface TestApp {
  app: FastifyInstance
  history: HistoryStore
  policies: PolicyHolder
}

const loaded = new Map<string, Promise<CompiledPolicySet>>()

/** Policy folders are loaded once per process and per folder (a compiled set is immutable). */
export function policySet (dir: string): Promise<CompiledPolicySet> {
  let set = loaded.get(dir)
  if (!set) {
    set = loadPolicySet(dir).then(r => r.set)
    loaded.set(dir, set)
  }
  return set
}

export async function buildTestApp (options: TestAppOptions): Promise<TestApp> {
  const set = await policySet(options.policiesDir ?? EXAMPLE_POLICIES)
  const policies = new PolicyHolder(set, () => NOW_MS)
  const history = options.history ?? createMemoryHistoryStore({ maxSubjects: 1000 })
  const app = await buildApp(
    { apiKeys: options.apiKeys ?? [], adminApiKeys: options.adminApiKeys ?? [] },
    {
      policies,
      geo: options.geo,
      history,
      logger: options.logger ?? pino({ level: 'silent' }),
      now: options.now ?? (() => NOW_MS),
      maxEventLoopDelayMs: options.maxEventLoopDelayMs ?? 0
    }
  )
  await app.ready()
  return { app, history, policies }
}

/** The parts of a `/decide` answer the tests read. */
export interface DecideAnswer {
  decision: 'allow' | 'step_up' | 'deny'
  decisionId: string
  required?: { aal: number, factors: string[], maxAge: number, acrValues: string[] }
  challenge?: { status: number, wwwAuthenticate?: string }
  enroll?: string[]
  message?: string
  reasons: Array<{ policy: string, trigger: string, outcome: string, detail?: string, figures?: Record<string, unknown>, unmet?: string[] }>
  session: { aal: number, authAge?: number, factors?: string[] }
  reportOnly: Array<{ policy: string, decision: string, trigger: string }>
}

export function postDecide (app: FastifyInstance, body: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/decide', payload: body as Record<string, unknown>, headers })
}

/** POST /decide that must answer 200; returns the parsed body. */
export async function decide (app: FastifyInstance, body: unknown, headers: Record<string, string> = {}): Promise<DecideAnswer> {
  const res = await postDecide(app, body, headers)
  if (res.statusCode !== 200) throw new Error(`POST /decide: HTTP ${res.statusCode}: ${res.body}`)
  return res.json<DecideAnswer>()
}

/** A session of `amr` authenticated `authAgo` seconds before NOW_S. */
export const session = (subject: string, amr: string[], authAgo = 0): { subject: { id: string }, claims: Record<string, unknown> } =>
  ({ subject: { id: subject }, claims: { sub: subject, amr, auth_time: NOW_S - authAgo } })

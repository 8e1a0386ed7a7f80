/**
 * One server under test, in its own process (forked by bench/run.ts, so the load generator and
 * the server do not share an event loop). argv[2] is a JSON ServerSpec. It listens on
 * 127.0.0.1:0, reports { type: 'ready', port } over IPC and closes on { type: 'close' }.
 *
 *  - bare:   Fastify with the same options as buildApp (body limit, ajv options, ip format, no
 *            request logging), one POST route with the /decide request schema and the decision
 *            response schema, answering canned /decide responses of the real sizes. With
 *            `redisUrl` it also makes one Redis round trip: MULTI { HMGET, EXISTS } EXEC.
 *  - decide: buildApp as src/server.ts wires it: memory history + memory audit, or Redis history
 *            + Redis audit stream (`audit: 'memory'` isolates the history store).
 * Logging is pino at `info` to /dev/null through the destination src/server.ts uses (sonic-boom,
 * sync: false, minLength 4096), so the decision line is paid for as in production.
 */
import { readFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify, { type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import type { Redis } from 'ioredis'
import { buildApp, fastifyOptions } from '../src/app.js'
import { createRedisAuditLog } from '../src/audit/redis-audit-log.js'
import type { AuditLog } from '../src/audit/audit-log.js'
import type { Metrics } from '../src/metrics.js'
import { Registry } from 'prom-client'
import { decideBodyValidator, decideRequestSchema, decisionSchema, type DecideBody } from '../src/contract/index.js'
import { compilePolicies } from '../src/policy/compile.js'
import { loadPolicySet, PolicyHolder } from '../src/policy/load.js'
import type { FolderSources } from '../src/policy/source.js'
import { openGeoLookup } from '../src/signals/geo.js'
import type { HistoryStore } from '../src/signals/history.js'
import { createMemoryHistoryStore } from '../src/signals/memory-history.js'
import { createRedisClient, createRedisHistoryStore } from '../src/signals/redis-history.js'

export type ServerSpec =
  | { kind: 'bare', responsesFile: string, redisUrl?: string }
  | {
    kind: 'decide'
    history: 'memory' | 'redis'
    audit: 'memory' | 'redis'
    redisUrl?: string
    policiesDir?: string
    sourcesFile?: string
    /** Ablations (bench/ablate.ts): what each part of the wiring costs. */
    variant?: Variant
  }

export interface Variant {
  /** pino level (default info). */
  logLevel?: string
  /** One synchronous write per log line instead of src/server.ts's 4 KB buffered destination. */
  syncLog?: boolean
  /** 0 = no @fastify/under-pressure (default: buildApp's 1000 ms). */
  maxEventLoopDelayMs?: number
  /** A metrics object that records nothing. */
  noMetrics?: boolean
  /** An audit log that keeps nothing. */
  noAudit?: boolean
}

const spec = JSON.parse(process.argv[2]!) as ServerSpec
const variant: Variant = spec.kind === 'decide' ? spec.variant ?? {} : {}
// As src/server.ts: a buffered sonic-boom destination (4 KB, asynchronous), here onto /dev/null.
const destination = variant.syncLog === true ? pino.destination({ dest: '/dev/null', sync: true }) : pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 })
setInterval(() => { destination.flush() }, 1000).unref()
const logger = pino({ level: variant.logLevel ?? 'info', base: { service: 'stepup-pdp' } }, destination)
const closers: Array<() => Promise<void> | void> = []

async function bare (s: Extract<ServerSpec, { kind: 'bare' }>): Promise<FastifyInstance> {
  const responses = JSON.parse(readFileSync(s.responsesFile, 'utf8')) as object[]
  const app: FastifyInstance = Fastify(fastifyOptions(logger))
  let i = 0
  const schema = { body: decideRequestSchema, response: { 200: decisionSchema } }
  // The route's own validator, as registerDecideRoute installs it.
  const validatorCompiler = (): typeof decideBodyValidator => decideBodyValidator
  if (s.redisUrl === undefined) {
    app.post('/decide', { schema, validatorCompiler }, async () => responses[i++ % responses.length])
  } else {
    // The same client options as the history store (fail fast, no offline queue).
    const redis = createRedisClient({ url: s.redisUrl, commandTimeoutMs: 50 }) as Redis
    redis.on('error', () => {})
    closers.push(() => { redis.disconnect() })
    app.post<{ Body: DecideBody }>('/decide', { schema, validatorCompiler }, async request => {
      const key = `bench:b:{${request.body.subject?.id ?? request.body.claims?.sub as string}}`
      const reply = await redis.multi().hmget(key, 'l', `d:${request.body.device?.fingerprint ?? ''}`, 'c:GB').exists(`${key}:once`).exec()
      if (!reply || reply.some(([err]) => err)) throw new Error('redis failed')
      return responses[i++ % responses.length]
    })
  }
  return app
}

async function decide (s: Extract<ServerSpec, { kind: 'decide' }>): Promise<FastifyInstance> {
  let set
  if (s.sourcesFile !== undefined) {
    const sources = JSON.parse(readFileSync(s.sourcesFile, 'utf8')) as FolderSources
    const compiled = compilePolicies(sources)
    const errors = compiled.problems.filter(p => p.severity === 'error')
    if (!compiled.set || errors.length > 0) throw new Error(`generated policies do not compile: ${JSON.stringify(errors.slice(0, 3))}`)
    set = compiled.set
  } else {
    set = (await loadPolicySet(s.policiesDir!)).set
  }
  const geo = await openGeoLookup({})
  let history: HistoryStore
  if (s.history === 'redis') {
    history = createRedisHistoryStore({ url: s.redisUrl!, commandTimeoutMs: 50, onError: () => {} })
    // Wait for the connection, as a server that has been up for a while would have it.
    const until = Date.now() + 5000
    while (!(await history.ping())) {
      if (Date.now() > until) throw new Error('redis history store did not connect')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  } else {
    history = createMemoryHistoryStore({ maxSubjects: 100_000 })
  }
  let audit: AuditLog | undefined
  if (variant.noAudit === true) {
    audit = { kind: 'memory', append: () => {}, rememberStepUp: () => {}, findStepUp: async () => undefined, claimOutcome: async () => true, query: async () => [], flush: async () => {}, close: async () => {} }
  } else if (s.audit === 'redis') {
    const client = createRedisClient({ url: s.redisUrl!, commandTimeoutMs: 500 })
    client.on('error', () => {})
    audit = createRedisAuditLog(client, { maxEntries: 100_000, onError: () => {} })
    closers.push(async () => { await audit!.close(); client.disconnect() })
  }
  closers.push(() => history.close(), () => geo.close())
  const metrics: Metrics | undefined = variant.noMetrics === true
    ? { registry: new Registry(), recordDecision: () => {}, storeError: () => {}, reload: () => {}, policiesLoaded: () => {} }
    : undefined
  return buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new PolicyHolder(set),
    geo: () => geo,
    history,
    logger,
    ...(audit ? { audit } : {}),
    ...(metrics ? { metrics } : {}),
    ...(variant.maxEventLoopDelayMs !== undefined ? { maxEventLoopDelayMs: variant.maxEventLoopDelayMs } : {})
  })
}

const started = performance.now()
const app = spec.kind === 'bare' ? await bare(spec) : await decide(spec)
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
const port = typeof address === 'object' && address ? address.port : 0
process.send!({ type: 'ready', port, startupMs: performance.now() - started })

// The server's own event-loop delay since the last 'cpu' query: stalls (GC, long tasks) show here.
const loopDelay = monitorEventLoopDelay({ resolution: 1 })
loopDelay.enable()
process.on('message', (m: { type: string }) => {
  if (m.type === 'cpu') {
    process.send!({ type: 'cpu', usage: process.cpuUsage(), memory: process.memoryUsage().rss, loopDelayMaxMs: loopDelay.max / 1e6, loopDelayP99Ms: loopDelay.percentile(99) / 1e6 })
    loopDelay.reset()
    return
  }
  if (m.type !== 'close') return
  void (async () => {
    await app.close()
    for (const c of closers) await c()
    process.exit(0)
  })()
})
process.on('disconnect', () => process.exit(0))

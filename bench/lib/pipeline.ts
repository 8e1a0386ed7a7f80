/**
 * The /decide pipeline without HTTP, stage by stage, for the microbenchmarks and the profile:
 * the decision contract (src/contract: the route's own validator, normalizeDecideBody) -> the
 * decision service wired as buildApp wires it (metrics, memory audit, pino at info) -> the
 * contract's response mapping -> fast-json-stringify of the decision schema (what Fastify
 * serializes with).
 */
import type { ValidateFunction } from 'ajv'
import fastJson from 'fast-json-stringify'
import { pino, type Logger } from 'pino'
import { createMemoryAuditLog } from '../../src/audit/audit-log.js'
import { auditDecision } from '../../src/app.js'
import type { CompiledPolicySet } from '../../src/engine/policy-set.js'
import { decideBodyValidator, decisionSchema, normalizeDecideBody, toDecideResponse, type DecideBody } from '../../src/contract/index.js'
import { createMetrics } from '../../src/metrics.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { createDecisionService, type DecisionService } from '../../src/service.js'
import type { GeoLookup } from '../../src/signals/geo.js'
import type { HistoryStore } from '../../src/signals/history.js'

/** The validator the route uses (its `validatorCompiler` returns this very function). */
export function requestValidator (): ValidateFunction<DecideBody> {
  return decideBodyValidator
}

export const responseSerializer = (): ((doc: unknown) => string) => fastJson(decisionSchema as never) as (doc: unknown) => string

/** As src/server.ts: pino at info onto a buffered sonic-boom destination (here /dev/null). */
export const devNullLogger = (): Logger =>
  pino({ level: 'info', base: { service: 'stepup-pdp' } }, pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }))

export interface Pipeline {
  service: DecisionService
  validate: ValidateFunction
  serialize: (doc: unknown) => string
  /** One request end to end, as the route handles it (minus Fastify and the socket). */
  handle: (body: DecideBody) => Promise<string>
}

export function buildPipeline (set: CompiledPolicySet, geo: GeoLookup, history: HistoryStore, logger: Logger = devNullLogger()): Pipeline {
  const policies = new PolicyHolder(set)
  const metrics = createMetrics()
  const audit = createMemoryAuditLog({ maxEntries: 10_000 })
  const service = createDecisionService({
    policies,
    geo,
    history,
    logger,
    now: Date.now,
    onStoreError: metrics.storeError,
    onDecision: record => { metrics.recordDecision(record); auditDecision(audit, record) }
  })
  const validate = requestValidator()
  const serialize = responseSerializer()
  return {
    service,
    validate,
    serialize,
    handle: async body => {
      if (!validate(body)) throw new Error(`invalid body: ${JSON.stringify(validate.errors)}`)
      return serialize(toDecideResponse(await service.decide(normalizeDecideBody(body, policies.current.assurance))))
    }
  }
}

/**
 * Calls `fn` over `inputs` (cycling) for about `ms` after a warm-up; returns µs per call.
 * Async functions are awaited one at a time (a latency, not a throughput).
 */
export async function timeIt<T> (inputs: readonly T[], ms: number, fn: (x: T) => unknown): Promise<{ usPerCall: number, calls: number }> {
  let sink = 0
  const run = async (budgetMs: number): Promise<{ calls: number, elapsed: number }> => {
    const start = performance.now()
    let calls = 0
    let i = 0
    while (true) {
      for (let k = 0; k < 256; k++) {
        const r = fn(inputs[i]!)
        if (r instanceof Promise) await r
        else if (r) sink++
        i = i + 1 === inputs.length ? 0 : i + 1
      }
      calls += 256
      const elapsed = performance.now() - start
      if (elapsed >= budgetMs) return { calls, elapsed }
    }
  }
  await run(Math.max(50, ms / 4))
  const { calls, elapsed } = await run(ms)
  if (sink < 0) console.log(sink)
  return { usPerCall: (elapsed * 1000) / calls, calls }
}

/** `concurrency` calls in flight at once: µs per call amortised (a throughput). */
export async function timeConcurrent<T> (inputs: readonly T[], ms: number, concurrency: number, fn: (x: T) => Promise<unknown>): Promise<{ usPerCall: number, calls: number }> {
  const run = async (budgetMs: number): Promise<{ calls: number, elapsed: number }> => {
    const start = performance.now()
    let calls = 0
    let i = 0
    const worker = async (): Promise<void> => {
      while (performance.now() - start < budgetMs) {
        const x = inputs[i]!
        i = i + 1 === inputs.length ? 0 : i + 1
        await fn(x)
        calls++
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return { calls, elapsed: performance.now() - start }
  }
  await run(Math.max(50, ms / 4))
  const { calls, elapsed } = await run(ms)
  return { usPerCall: (elapsed * 1000) / calls, calls }
}

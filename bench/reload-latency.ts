/**
 * /decide latency while a 10,000-policy folder reloads, and how long loading that folder takes.
 *
 * The server (this process) serves the generated 10,000-policy set; a client process sends a
 * paced load; one run without reloads, one with a reload of a changed folder every 1.5 s (each
 * one a full load in the worker and the swap on this thread). Then the load itself: on this
 * thread (`loadPolicySet`) and in the worker (`loadInWorker`), cold and warm.
 *
 *   npx tsx bench/reload-latency.ts [rate=400] [seconds=10] [policies=10000]
 */
import { execFile } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { buildApp } from '../src/app.js'
import { loadPolicySet, PolicyHolder } from '../src/policy/load.js'
import { createPolicyReloader } from '../src/policy/reloader.js'
import { createWorkerLoader } from '../src/policy/worker-load.js'
import { openGeoLookup } from '../src/signals/geo.js'
import { createMemoryHistoryStore } from '../src/signals/memory-history.js'
import { script } from './lib/paths.js'
import { writePolicyFolder } from './lib/workload.js'

const [rate = 400, seconds = 10, policies = 10_000] = process.argv.slice(2).map(Number)
const run = promisify(execFile)
const dir = mkdtempSync(join(tmpdir(), 'stepup-reload-bench-'))
writePolicyFolder(dir, policies)

const time = async <T>(fn: () => Promise<T>): Promise<number> => { const t = performance.now(); await fn(); return performance.now() - t }
const loader = createWorkerLoader()
const loadTimes = {
  workerColdMs: await time(() => loader.load(dir)),
  workerWarmMs: await time(() => loader.load(dir)),
  mainThreadMs: await time(() => loadPolicySet(dir)),
  mainThreadWarmMs: await time(() => loadPolicySet(dir))
}

const holder = new PolicyHolder((await loader.load(dir)).set)
const reloader = createPolicyReloader({ dir, holder, logger: pino({ level: 'silent' }), loader })
const app = await buildApp({ apiKeys: [], adminApiKeys: [] }, {
  policies: holder, geo: await openGeoLookup({}), history: createMemoryHistoryStore({ maxSubjects: 100_000 }), reloader, maxEventLoopDelayMs: 0
})
const url = await app.listen({ port: 0, host: '127.0.0.1' })

const client = async (): Promise<Record<string, number>> => {
  const { file, execArgv } = script('reload-client')
  const { stdout } = await run(process.execPath, [...execArgv, file, url, String(rate), String(seconds), String(policies)], { maxBuffer: 1 << 20 })
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number>
}

/** The longest wait of this (the server's) event loop, in ms: what a reload's main-thread part costs a request. */
const loopDelay = (): { max: () => number } => {
  const h = monitorEventLoopDelay({ resolution: 1 })
  h.enable()
  return { max: () => { h.disable(); return h.max / 1e6 } }
}
const quietLoop = loopDelay()
const quiet = await client()
const quietStall = quietLoop.max()
const busyLoop = loopDelay()
const reloads: number[] = []
let stop = false
const reloading = (async () => {
  for (let i = 0; !stop; i++) {
    await new Promise(resolve => setTimeout(resolve, 1500))
    // A change that alters the set, so every reload compiles and swaps a new one.
    appendFileSync(join(dir, 'gen', '0000.yaml'), `  - id: bench-extra-${i}\n    actions: [bench.extra${i}]\n`)
    const started = performance.now()
    const r = await reloader.reload('bench')
    if (r.outcome !== 'applied') throw new Error(`reload ${r.outcome}: ${r.errors.join('; ')}`)
    reloads.push(performance.now() - started)
  }
})()
const busy = await client()
stop = true
await reloading
const busyStall = busyLoop.max()
await app.close()
await loader.close()
rmSync(dir, { recursive: true, force: true })

const pick = (r: Record<string, number>): string => `p50 ${r.p50!.toFixed(2)} ms, p99 ${r.p99!.toFixed(2)} ms, max ${r.max!.toFixed(1)} ms, ${r.requests} requests, ${r.errors! + r.non2xx!} errors`
console.log(`${policies} policies, ${rate} req/s for ${seconds} s (node ${process.version})`)
console.log(`load: worker cold ${loadTimes.workerColdMs.toFixed(0)} ms, warm ${loadTimes.workerWarmMs.toFixed(0)} ms; main thread ${loadTimes.mainThreadMs.toFixed(0)} ms, warm ${loadTimes.mainThreadWarmMs.toFixed(0)} ms`)
console.log(`/decide without reloads: ${pick(quiet)}; longest event-loop stall ${quietStall.toFixed(1)} ms`)
console.log(`/decide with ${reloads.length} reloads (each ${reloads.map(r => r.toFixed(0)).join(', ')} ms): ${pick(busy)}; longest event-loop stall ${busyStall.toFixed(1)} ms`)

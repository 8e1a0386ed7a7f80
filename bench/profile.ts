/**
 * CPU profiles of the decision path, summarised (bench/summarize-profile.ts).
 *
 *   npx tsx bench/profile.ts [--seconds 10] [--policies N] [--store memory|redis]
 *       an in-process decision loop (validate, normalize, service.decide with logging, metrics
 *       and audit, serialize) over the benchmark's request mix, re-run under
 *       `node --cpu-prof --import tsx` [--concurrency C: C decisions in flight];
 *   npx tsx bench/profile.ts --http [--bare] [--seconds 10] [--policies N] [--store memory|redis]
 *       the real server (bench/server.ts, buildApp) under --cpu-prof, driven by autocannon
 *       (50 connections, closed loop) from this process;
 *   npx tsx bench/profile.ts --load N
 *       loading and compiling N generated policies from YAML files (bench/load-child.ts).
 * Profiles and summaries go to bench/.tmp/prof/.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { compilePolicies } from '../src/policy/compile.js'
import { loadPolicySet } from '../src/policy/load.js'
import { openGeoLookup } from '../src/signals/geo.js'
import type { HistoryStore } from '../src/signals/history.js'
import { createMemoryHistoryStore } from '../src/signals/memory-history.js'
import { createRedisHistoryStore } from '../src/signals/redis-history.js'
import { load, toRequests } from './lib/load.js'
import { buildPipeline } from './lib/pipeline.js'
import { startRedis, type BenchRedis } from './lib/redis.js'
import { summarizeDir } from './summarize-profile.js'
import { benchDir, root, script } from './lib/paths.js'
import { generatedActions, generatePolicies, makeMix, writePolicyFolder } from './lib/workload.js'
import { fork } from 'node:child_process'
import type { ServerSpec } from './server.js'

const here = benchDir
const profDir = join(here, '.tmp', 'prof')
const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] ?? fallback : fallback }
const seconds = Number(arg('seconds', '10'))
const policies = Number(arg('policies', '0'))
const store = arg('store', 'memory') as 'memory' | 'redis'
const http = process.argv.includes('--http')
/** In-process: decisions in flight at once (default 1; 50 with Redis, as under load). */
const concurrency = Number(arg('concurrency', store === 'redis' ? '50' : '1'))
const bare = process.argv.includes('--bare')
const nowS = Math.floor(Date.now() / 1000)

const report = (dir: string, label: string, units?: { count: number, name: string }): void => {
  console.log(`\n${summarizeDir(dir, label, 30, units)}\n(written to ${dir}.md)`)
}

function mixFor (n: number): ReturnType<typeof makeMix> {
  if (n > 0) return makeMix({ count: 20_000, seed: 99, nowS, population: 200, variety: 'mixed', actions: generatedActions(generatePolicies(n).actions) })
  return makeMix({ count: 5000, seed: 42, nowS, population: 200, variety: 'mixed' })
}

async function inProcessLoop (): Promise<void> {
  let redis: BenchRedis | undefined
  const set = policies > 0 ? compilePolicies(generatePolicies(policies).sources).set! : (await loadPolicySet(join(root, 'policies'))).set
  const geo = await openGeoLookup({})
  let history: HistoryStore
  if (store === 'redis') {
    redis = await startRedis()
    history = createRedisHistoryStore({ url: redis.url, commandTimeoutMs: 1000 })
    while (!(await history.ping())) await new Promise(resolve => setTimeout(resolve, 20))
  } else {
    history = createMemoryHistoryStore({ maxSubjects: 100_000 })
  }
  const pipe = buildPipeline(set, geo, history)
  const mix = mixFor(policies)
  for (const b of mix) await pipe.handle(b)
  const start = performance.now()
  let n = 0
  while (performance.now() - start < seconds * 1000) {
    if (concurrency > 1) {
      await Promise.all(Array.from({ length: concurrency }, (_, k) => pipe.handle(mix[(n + k) % mix.length]!)))
      n += concurrency
    } else {
      for (let k = 0; k < 100; k++) await pipe.handle(mix[(n + k) % mix.length]!)
      n += 100
    }
  }
  const elapsed = (performance.now() - start) / 1000
  console.log(`in-process: ${n} decisions in ${elapsed.toFixed(1)} s = ${(n / elapsed).toFixed(0)}/s, ${((elapsed * 1e6) / n).toFixed(1)} µs each`)
  // Warm-up passes included: the profile covers them too.
  writeFileSync(process.env.BENCH_COUNT_FILE!, String(n + mix.length))
  await history.close()
  geo.close()
  await redis?.stop()
}

async function httpRun (): Promise<void> {
  mkdirSync(profDir, { recursive: true })
  let redis: BenchRedis | undefined
  if (store === 'redis') redis = await startRedis()
  const mix = mixFor(policies)
  let spec: ServerSpec
  const tmp = join(here, '.tmp')
  if (bare) {
    const responsesFile = join(tmp, 'profile-responses.json')
    const set = (await loadPolicySet(join(root, 'policies'))).set
    const geo = await openGeoLookup({})
    const pipe = buildPipeline(set, geo, createMemoryHistoryStore({ maxSubjects: 100_000 }))
    const responses = []
    for (const b of mix) responses.push(JSON.parse(await pipe.handle(b)) as unknown)
    writeFileSync(responsesFile, JSON.stringify(responses))
    spec = { kind: 'bare', responsesFile, ...(redis ? { redisUrl: redis.url } : {}) }
  } else if (policies > 0) {
    const sourcesFile = join(tmp, `profile-policies-${policies}.json`)
    writeFileSync(sourcesFile, JSON.stringify(generatePolicies(policies).sources))
    spec = { kind: 'decide', history: store, audit: store, sourcesFile, ...(redis ? { redisUrl: redis.url } : {}) }
  } else {
    spec = { kind: 'decide', history: store, audit: store, policiesDir: join(root, 'policies'), ...(redis ? { redisUrl: redis.url } : {}) }
  }
  const dir = join(profDir, `server-${bare ? 'bare' : 'decide'}-${store}-${policies || 'examples'}-${process.pid}`)
  const server = script('server')
  const child = fork(server.file, [JSON.stringify(spec)], { cwd: root, execArgv: [...server.execArgv, '--cpu-prof', '--cpu-prof-dir', dir], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const port = await new Promise<number>(resolve => child.once('message', (m: { port: number }) => resolve(m.port)))
  const requests = toRequests(mix, '/decide')
  const w = await load({ url: `http://127.0.0.1:${port}/decide`, requests, connections: 50, seconds: 2 })
  const r = await load({ url: `http://127.0.0.1:${port}/decide`, requests, connections: 50, seconds })
  console.log(`http: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`)
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.send({ type: 'close' })
  await exited
  await redis?.stop()
  report(dir, `Server profile: ${bare ? 'bare route' : '/decide'} (${store}, ${policies || 'example'} policies), ${r.rps.toFixed(0)} req/s under autocannon`, { count: w.requests + r.requests, name: 'request' })
}

async function loadRun (n: number): Promise<void> {
  const dir = join(profDir, `load-${n}-${process.pid}`)
  const folder = join(here, '.tmp', `policies-${n}`)
  writePolicyFolder(folder, n)
  const child = script('load-child')
  const res = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, ...child.execArgv, child.file, folder, '0'], { cwd: root, encoding: 'utf8' })
  if (res.status !== 0) throw new Error(res.stderr)
  console.log(res.stdout.trim())
  report(dir, `Loading and compiling ${n} policies (a fresh process, one loadPolicySet)`)
}

const loadN = Number(arg('load', '0'))
if (loadN > 0) {
  await loadRun(loadN)
} else if (http) {
  await httpRun()
} else if (process.env.BENCH_PROFILING === '1') {
  await inProcessLoop()
} else {
  const dir = join(profDir, `inprocess-${store}-${policies || 'examples'}-${process.pid}`)
  mkdirSync(dir, { recursive: true })
  const countFile = join(dir, 'count.txt')
  const self = script('profile')
  const res = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, ...self.execArgv, self.file, ...process.argv.slice(2)],
    { cwd: root, stdio: 'inherit', env: { ...process.env, BENCH_PROFILING: '1', BENCH_COUNT_FILE: countFile } })
  if (res.status !== 0) process.exit(res.status ?? 1)
  report(dir, `In-process decision loop (${store}, ${policies || 'example'} policies)`, { count: Number(readFileSync(countFile, 'utf8')), name: 'decision' })
}

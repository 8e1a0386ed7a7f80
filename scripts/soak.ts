/**
 * Faults under load: `npm run soak -- --minutes N [--backends memory,redis,cluster,sentinel] [--out FILE]`.
 *
 * For each backend it starts the real service (src/server.ts in a child process) on a real store,
 * measures the maximum rate, then offers half of it for its share of the run while faults happen:
 *   redis     the server paused (SIGSTOP/SIGCONT) and killed/restarted empty, alternately
 *   cluster   3 masters with a replica each; a master killed (its replica takes over), then restarted
 *   sentinel  master + replica + 3 sentinels; SENTINEL FAILOVER and a killed master, alternately
 * It counts /decide 5xx and fail-open answers (a never-seen device must step up; a once-only
 * authentication replayed must not be allowed), the time back to normal after each fault, p99
 * outside faults, the service's memory growth and its throughput at the end against the start,
 * writes the figures to docs/reliability.md (or --out), and exits 1 on any 5xx or fail-open
 * (2 when it could not run: a store or the service did not start, a fault did not complete in time).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startRedis, startRedisCluster, startRedisSentinel } from '../test/helpers/redis.js'
import { closedLoop, failOpen, openLoop, quantile, SOAK_POLICY, target, type Sample, type Target } from './lib/load.js'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
type Backend = 'memory' | 'redis' | 'cluster' | 'sentinel'
const BACKENDS: Backend[] = ['memory', 'redis', 'cluster', 'sentinel']
/** Each backend's share of the run (memory has no faults, so less). */
const WEIGHT: Record<Backend, number> = { memory: 0.1, redis: 0.3, cluster: 0.3, sentinel: 0.3 }

interface Args { minutes: number, out: string, backends: Backend[] }

function parseArgs (argv: string[]): Args {
  const args: Args = { minutes: 30, out: join(ROOT, 'docs/reliability.md'), backends: BACKENDS }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--minutes') args.minutes = Number(next())
    else if (a === '--out') args.out = resolve(next())
    else if (a === '--backends') args.backends = next().split(',').map(b => b.trim()) as Backend[]
    else throw new Error(`unknown argument ${a} (use --minutes N, --out FILE, --backends memory,redis,cluster,sentinel)`)
  }
  if (!Number.isFinite(args.minutes) || args.minutes <= 0) throw new Error('--minutes: expected a positive number')
  for (const b of args.backends) if (!BACKENDS.includes(b)) throw new Error(`--backends: unknown backend ${b}`)
  return args
}

// ---- the service ------------------------------------------------------------------------------

const freePort = (): Promise<number> => new Promise((resolvePort, reject) => {
  const server = createServer()
  server.once('error', reject)
  server.listen(0, '127.0.0.1', () => {
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    server.close(() => resolvePort(port))
  })
})

interface Service { port: number, child: ChildProcess, rssMb: () => number, stop: () => Promise<void> }

async function startService (env: Record<string, string>, policiesDir: string, logFile: string): Promise<Service> {
  const port = await freePort()
  const log = openSync(logFile, 'a')
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/server.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', POLICIES_DIR: policiesDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', log, log]
  })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>(r => child.once('exit', () => r()))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
  // Never leave the service behind: on exit, and on the signals that end the soak without one.
  const killChild = (): void => { child.kill('SIGKILL') }
  process.once('exit', killChild)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, killChild)
  const until = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}; see ${logFile}`)
    if (Date.now() > until) { await stop(); throw new Error(`the service was not ready within 90 s; see ${logFile}`) }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`)
      if (res.status === 200) break
    } catch { /* not listening yet */ }
    await sleep(250)
  }
  const rssMb = (): number => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
      return m ? Number(m[1]) / 1024 : NaN
    } catch {
      return NaN
    }
  }
  return { port, child, rssMb, stop }
}

// ---- faults -----------------------------------------------------------------------------------

interface Fault {
  kind: string
  /** ms since the soak epoch. */
  at: number
  /** When the store was back (resumed, restarted, failover announced). */
  backAt: number
  /** When the fault's clean-up (restart of a killed node, resync) ended. */
  doneAt: number
}

interface Store {
  env: Record<string, string>
  /** The fault kinds, taken in turn. */
  faults: Array<(short: boolean) => Promise<{ kind: string, back: number }>>
  stop: () => Promise<void>
}

async function startStore (backend: Backend): Promise<Store> {
  switch (backend) {
    case 'memory':
      return { env: {}, faults: [], stop: async () => {} }
    case 'redis': {
      const r = await startRedis()
      return {
        env: { REDIS_URL: r.url },
        faults: [
          async short => {
            r.pause()
            await sleep(short ? 3000 : 5000)
            r.resume()
            return { kind: `paused ${short ? 3 : 5} s (SIGSTOP)`, back: Date.now() }
          },
          async short => {
            await r.stop()
            await sleep(short ? 2000 : 3000)
            await r.restart()
            return { kind: `killed, restarted empty after ${short ? 2 : 3} s`, back: Date.now() }
          }
        ],
        stop: r.stop
      }
    }
    case 'cluster': {
      const c = await startRedisCluster(undefined, { replicas: 1 })
      let turn = 0
      return {
        env: { REDIS_CLUSTER_NODES: c.nodes.map(n => `${n.host}:${n.port}`).join(',') },
        faults: [
          async () => {
            const masters = await c.masters()
            const victim = masters[turn++ % masters.length]!
            await c.stopNode(victim)
            const until = Date.now() + 60_000
            // Back when a replica has taken the dead master's slots and the cluster is ok.
            while (Date.now() < until) {
              const now = await c.masters().catch((): number[] => [])
              if (now.length === 3 && !now.includes(victim)) break
              await sleep(100)
            }
            await c.waitHealthy(60_000)
            const back = Date.now()
            await c.startNode(victim)
            await c.waitHealthy(60_000)
            return { kind: 'a master killed (replica promoted), then restarted as a replica', back }
          }
        ],
        stop: c.stop
      }
    }
    case 'sentinel': {
      const s = await startRedisSentinel()
      return {
        env: { REDIS_SENTINELS: s.sentinels.map(n => `${n.host}:${n.port}`).join(','), REDIS_SENTINEL_NAME: s.name },
        faults: [
          async () => {
            await s.waitReplicated(60_000)
            await s.failover(60_000)
            return { kind: 'SENTINEL FAILOVER', back: Date.now() }
          },
          async () => {
            await s.waitReplicated(60_000)
            const old = await s.masterPort()
            await s.killMaster(60_000)
            const back = Date.now()
            await s.restartDataNode(old)
            await s.waitReplicated(60_000)
            return { kind: 'the master killed (sentinels promote the replica), then restarted', back }
          }
        ],
        stop: s.stop
      }
    }
  }
}

// ---- one backend ------------------------------------------------------------------------------

interface PhaseResult {
  backend: Backend
  seconds: number
  maxStart: number
  maxEnd: number
  offeredUnits: number
  requests: number
  statuses: Record<string, number>
  fivexx: number
  failOpen: number
  shed: number
  p50: number
  p99: number
  p99All: number
  maxMs: number
  rssStart: number
  rssEnd: number
  firstRate: number
  lastRate: number
  windowSeconds: number
  faults: Array<Fault & { recoveredAt: number, sinceBackMs: number, sinceFaultMs: number, degraded: number }>
  strayDegraded: number
}

async function runPhase (backend: Backend, seconds: number, short: boolean, policiesDir: string, logFile: string): Promise<PhaseResult> {
  const store = await startStore(backend)
  let service: Service | undefined
  try {
    service = await startService(store.env, policiesDir, logFile)
    const t: Target = target(service.port)
    const epoch = Date.now()
    const ignore = (): void => {}
    const calibrate = short ? 3 : 8
    await closedLoop(t, short ? 2 : 5, 32, epoch, ignore) // warm-up
    const start = await closedLoop(t, calibrate, 32, epoch, ignore)
    const rssStart = service.rssMb()
    const offeredUnits = Math.max(5, start.unitsPerSecond / 2)
    console.log(`soak: ${backend}: max ${start.requestsPerSecond.toFixed(0)} req/s; offering ${offeredUnits.toFixed(0)} units/s (half) for ${seconds.toFixed(0)} s`)

    const samples: Sample[] = []
    const loadStart = Date.now() - epoch
    const load = openLoop(t, offeredUnits, epoch, s => samples.push(s))
    const faults: Fault[] = []
    const count = store.faults.length === 0 ? 0 : Math.max(backend === 'redis' ? 2 : 1, Math.round(seconds / (backend === 'redis' ? 150 : 240)))
    const phaseEnd = Date.now() + seconds * 1000
    for (let i = 0; i < count; i++) {
      const when = epoch + loadStart + ((i + 1) * seconds * 1000) / (count + 1)
      if (when > Date.now()) await sleep(when - Date.now())
      const at = Date.now() - epoch
      const fault = store.faults[i % store.faults.length]!
      try {
        const { kind, back } = await fault(short)
        faults.push({ kind, at, backAt: back - epoch, doneAt: Date.now() - epoch })
        console.log(`soak: ${backend}: ${kind}: store back after ${((back - epoch - at) / 1000).toFixed(1)} s`)
      } catch (err) {
        console.error(`soak: ${backend}: fault ${i + 1} could not be completed: ${(err as Error).message}`)
        faults.push({ kind: `FAILED TO INJECT: ${(err as Error).message}`, at, backAt: Date.now() - epoch, doneAt: Date.now() - epoch })
      }
    }
    if (phaseEnd > Date.now()) await sleep(phaseEnd - Date.now())
    await load.stop()
    const loadEnd = Date.now() - epoch
    const rssEnd = service.rssMb()
    const end = await closedLoop(t, calibrate, 32, epoch, ignore)
    t.agent.destroy()
    return summarize({ backend, samples, faults, loadStart, loadEnd, start: start.requestsPerSecond, end: end.requestsPerSecond, offeredUnits, rssStart, rssEnd, shed: load.shed() })
  } finally {
    await service?.stop()
    await store.stop()
  }
}

function summarize (p: {
  backend: Backend
  samples: Sample[]
  faults: Fault[]
  loadStart: number
  loadEnd: number
  start: number
  end: number
  offeredUnits: number
  rssStart: number
  rssEnd: number
  shed: number
}): PhaseResult {
  const statuses: Record<string, number> = {}
  for (const s of p.samples) statuses[String(s.status)] = (statuses[String(s.status)] ?? 0) + 1
  const answered = (s: Sample): number => s.at + s.ms

  // Normal again: the first moment after the store is back from which, for 2 s, at most 5 % of
  // the answers say the history was unavailable (a busy machine makes stray timeouts; they must
  // not stretch a fault). A fault lasts from its start to then.
  const answers = p.samples.map(s => ({ t: answered(s), degraded: s.degraded })).sort((a, b) => a.t - b.t)
  const faults = p.faults.map((f, i) => {
    const end = Math.min(p.faults[i + 1]?.at ?? Infinity, p.loadEnd)
    const within = answers.filter(a => a.t >= f.at && a.t < end)
    let recoveredAt = Infinity
    for (let j = 0, k = 0; j < within.length; j++) {
      if (within[j]!.t < f.backAt) continue
      // The 2-s window from within[j]: k is the first answer past it.
      if (k < j) k = j
      while (k < within.length && within[k]!.t < within[j]!.t + 2000) k++
      if (within[k - 1]!.t - within[j]!.t < 1500 && k >= within.length) break // less than a full window left
      let bad = 0
      for (let x = j; x < k; x++) if (within[x]!.degraded) bad++
      if (bad <= 0.05 * (k - j)) { recoveredAt = Math.max(f.backAt, within[j]!.t); break }
    }
    const degraded = within.filter(a => a.degraded && a.t < (Number.isFinite(recoveredAt) ? recoveredAt + 2000 : end)).length
    return { ...f, recoveredAt, degraded, sinceBackMs: recoveredAt - f.backAt, sinceFaultMs: recoveredAt - f.at }
  })
  const inFault = (s: Sample): boolean => faults.some(f => s.at >= f.at && s.at <= Math.max(Number.isFinite(f.recoveredAt) ? f.recoveredAt : p.loadEnd, f.doneAt) + 1000)
  const outside = p.samples.filter(s => !inFault(s))
  const strayDegraded = outside.filter(s => s.degraded).length
  const latencies = outside.map(s => s.ms)

  const seconds = (p.loadEnd - p.loadStart) / 1000
  const windowSeconds = Math.min(60, Math.max(5, seconds / 4))
  const okIn = (from: number, to: number): number => p.samples.filter(s => s.status === 200 && answered(s) >= from && answered(s) < to).length / ((to - from) / 1000)
  return {
    backend: p.backend,
    seconds,
    maxStart: p.start,
    maxEnd: p.end,
    offeredUnits: p.offeredUnits,
    requests: p.samples.length,
    statuses,
    fivexx: p.samples.filter(s => s.status >= 500).length,
    failOpen: p.samples.filter(failOpen).length,
    shed: p.shed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    p99All: quantile(p.samples.map(s => s.ms), 0.99),
    maxMs: quantile(p.samples.map(s => s.ms), 1),
    rssStart: p.rssStart,
    rssEnd: p.rssEnd,
    firstRate: okIn(p.loadStart, p.loadStart + windowSeconds * 1000),
    lastRate: okIn(p.loadEnd - windowSeconds * 1000, p.loadEnd),
    windowSeconds,
    faults,
    strayDegraded
  }
}

// ---- report -----------------------------------------------------------------------------------

const f0 = (n: number): string => Number.isFinite(n) ? n.toFixed(0) : 'n/a'
const f1 = (n: number): string => Number.isFinite(n) ? n.toFixed(1) : 'n/a'
const pct = (a: number, b: number): string => b > 0 ? `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)} %` : 'n/a'

function report (args: Args, results: PhaseResult[], startedAt: Date, wallSeconds: number): string {
  const total5xx = results.reduce((n, r) => n + r.fivexx, 0)
  const totalFailOpen = results.reduce((n, r) => n + r.failOpen, 0)
  const totalRequests = results.reduce((n, r) => n + r.requests, 0)
  const allFaults = results.flatMap(r => r.faults.map(f => ({ backend: r.backend, ...f })))
  const lines = [
    '# Reliability',
    '',
    'How the service behaves under sustained load while its store fails, measured by',
    '`npm run soak` (scripts/soak.ts) and written here by that run. The fuzzing half of the',
    'reliability suite runs in `npm test` (test/fuzz/) and for longer with `npm run fuzz -- --minutes N`.',
    'The stores and their settings: [operations](operations.md), [Redis persistence](operations-redis-persistence.md),',
    '[rate limits and Sentinel](rate-limits-and-sentinel.md); the failure rules: [failure-rules](failure-rules.md).',
    '',
    `## Last run: ${args.minutes} minutes, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `- Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, load average at the end ${loadavg().map(n => n.toFixed(1)).join(' / ')}; the machine was shared with other work, so rates are modest and noisy.`,
    `- Wall time ${f0(wallSeconds / 60)} min; ${totalRequests.toLocaleString('en')} /decide requests; ${allFaults.length} faults.`,
    `- **/decide 5xx: ${total5xx}** (goal 0). **Fail-open answers: ${totalFailOpen}** (goal 0).`,
    '',
    '| backend | load s | max rate start → end (req/s) | offered (units/s) | requests | 5xx | fail-open | other non-200 | shed by client | p50 / p99 outside faults (ms) | p99 all / max (ms) | RSS start → end (MB) | ok/s first vs last window |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  ]
  for (const r of results) {
    const other = Object.entries(r.statuses).filter(([s]) => s !== '200' && Number(s) < 500).map(([s, n]) => `${s === '0' ? 'transport' : s}: ${n}`).join(', ') || '0'
    lines.push(`| ${r.backend} | ${f0(r.seconds)} | ${f0(r.maxStart)} → ${f0(r.maxEnd)} (${pct(r.maxEnd, r.maxStart)}) | ${f0(r.offeredUnits)} | ${r.requests.toLocaleString('en')} | ${r.fivexx} | ${r.failOpen} | ${other} | ${r.shed} | ${f1(r.p50)} / ${f1(r.p99)} | ${f1(r.p99All)} / ${f0(r.maxMs)} | ${f0(r.rssStart)} → ${f0(r.rssEnd)} | ${f0(r.firstRate)} vs ${f0(r.lastRate)} (${pct(r.lastRate, r.firstRate)}; ${f0(r.windowSeconds)} s windows) |`)
  }
  lines.push('', '### Faults', '',
    '"Store back" is when the store answered again (resumed, restarted, or the new master announced);',
    '"normal" is the first moment after that from which, for 2 s, at most 5 % of the answers said the',
    'history was unavailable. Goals: normal within 2 s of the store being back; within 10 s of a failover\'s start.',
    '',
    '| backend | at (s into run) | fault | store back after (s) | normal after store back (s) | normal after fault start (s) | degraded answers |',
    '|---|---|---|---|---|---|---|')
  for (const f of allFaults) {
    const never = 'not normal before the next fault'
    lines.push(`| ${f.backend} | ${f1(f.at / 1000)} | ${f.kind} | ${f1((f.backAt - f.at) / 1000)} | ${Number.isFinite(f.sinceBackMs) ? f1(f.sinceBackMs / 1000) : never} | ${Number.isFinite(f.sinceFaultMs) ? f1(f.sinceFaultMs / 1000) : never} | ${f.degraded} |`)
  }
  const stray = results.map(r => `${r.backend} ${r.strayDegraded} (${r.requests > 0 ? ((100 * r.strayDegraded) / r.requests).toFixed(2) : '0'} %)`).join(', ')
  lines.push('', `Answers outside any fault that still said the history was unavailable (a command past its ${'`'}REDIS_COMMAND_TIMEOUT_MS${'`'} of 50 ms, mostly when the busy machine delayed the event loop; they fail closed): ${stray}.`, '')
  lines.push(...HOW_TO)
  return lines.join('\n') + '\n'
}

const HOW_TO = [
  '## What the soak does',
  '',
  '- For each backend it starts the real service (`src/server.ts`, a child process, `LOG_LEVEL=warn`) on a',
  '  real store started on free ports: memory; one `redis-server`; a Redis Cluster of 3 masters with one',
  '  replica each; a master, a replica and 3 `redis-sentinel` processes (quorum 2, down after 1 s).',
  '- It measures the maximum rate with 32 connections in a closed loop, then offers half of it in an open',
  '  loop (a fixed rate, whatever the answers take) for the backend\'s share of the run: 10 % memory,',
  '  30 % each of the others. At the end it measures the maximum rate again.',
  '- The traffic, a "unit" at a time: 50 % a never-seen device on an action whose policy requires AAL3',
  '  on a new device (the answer must be `step_up`: an `allow` is a fail-open); 40 % routine requests from',
  '  known devices that read and learn history; 10 % a once-only (`maxAge: 0`) authentication sent twice',
  '  (the second must not be `allow`: a replay accepted is a fail-open).',
  '- Faults: Redis paused 5 s (SIGSTOP/SIGCONT) and killed then restarted empty, alternately, every few',
  '  minutes; a Cluster master killed (its replica is promoted) and restarted as a replica; `SENTINEL',
  '  FAILOVER` and a killed Sentinel master, alternately.',
  '- Figures: 5xx and fail-open counts, latency outside faults (a fault lasts until the service answers',
  '  normally again, plus 1 s), the service\'s resident memory after warm-up and at the end, completed',
  '  requests a second in the first and last window of the open loop, and the closed-loop maximum at the',
  '  start and end. It exits 1 on any 5xx or fail-open.',
  '',
  '## How to run it',
  '',
  '```sh',
  'npm run soak -- --minutes 30                       # every backend and fault; writes docs/reliability.md',
  'npm run soak -- --minutes 2 --out /tmp/soak.md     # the CI smoke (.ci/run)',
  'npm run soak -- --minutes 10 --backends redis,sentinel',
  '```',
  '',
  'It needs `redis-server`, `redis-cli` and `redis-sentinel` on PATH. The run is mostly limited by the',
  'machine: the load generator, the service and the Redis processes share its cores.',
  ''
]

// ---- main -------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const startedAt = new Date()
  const short = args.minutes < 5
  const work = mkdtempSync(join(tmpdir(), 'stepup-soak-'))
  const policiesDir = join(work, 'policies')
  mkdirSync(policiesDir)
  writeFileSync(join(policiesDir, 'soak.yaml'), SOAK_POLICY)
  const logFile = join(work, 'service.log')
  // The setup of each backend (start, calibration) takes about half a minute; the rest is load.
  const overhead = args.backends.length * (short ? 15 : 40)
  const loadSeconds = Math.max(20 * args.backends.length, args.minutes * 60 - overhead)
  const weights = args.backends.reduce((n, b) => n + WEIGHT[b], 0)
  const results: PhaseResult[] = []
  try {
    for (const backend of args.backends) {
      results.push(await runPhase(backend, (loadSeconds * WEIGHT[backend]) / weights, short, policiesDir, logFile))
    }
  } finally {
    if (results.length < args.backends.length) console.error(`soak: the service's log is in ${logFile}`)
  }
  const text = report(args, results, startedAt, (Date.now() - startedAt.getTime()) / 1000)
  writeFileSync(args.out, text)
  console.log(text)
  const fivexx = results.reduce((n, r) => n + r.fivexx, 0)
  const open = results.reduce((n, r) => n + r.failOpen, 0)
  if (fivexx > 0 || open > 0) {
    console.error(`soak: FATAL: ${fivexx} 5xx and ${open} fail-open answers (service log: ${logFile})`)
    process.exit(1)
  }
  rmSync(policiesDir, { recursive: true, force: true })
  console.log(`soak: the service's log is in ${logFile}`)
  process.exit(0)
}

main().catch(err => {
  console.error(`soak: could not run: ${(err as Error).stack ?? String(err)}`)
  process.exit(2)
})

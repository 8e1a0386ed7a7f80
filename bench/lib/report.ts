/** RESULTS.md, results.svg and results.json from one run's figures. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { PathsResult } from './ab.js'
import type { LoadResult } from './load.js'

export const NAMES = {
  A: 'baseline A (bare)',
  B: 'baseline B (bare + Redis)',
  M: '/decide memory',
  R: '/decide Redis',
  R0: '/decide Redis (memory audit)'
} as const

/** One run's load figures (without the raw latencies) and the server's side of it. */
export interface Run extends Omit<LoadResult, 'latencies'> {
  /** The server process's event-loop delay during the run, p99 and max ms. */
  serverLagP99: number
  serverLagMax: number
  /** Server process CPU time (user + system) per request, µs. */
  cpuUsPerRequest: number
  /** Of which kernel (system) time, µs. */
  sysUsPerRequest: number
  /** Whole machine's busy CPU during the run, in cores. */
  machineCpu: number
  /** CPU used by processes outside the benchmark during the run, in cores (noise). */
  otherCpu: number
}

export interface CommandCount { server: string, decisions: number, calls: Record<string, number>, totalCommandsProcessed: number }

export interface Results {
  mode: 'quick' | 'full'
  params: { connections: number, warmupS: number, runS: number, rounds: number, rateS: number, microMs: number, cmdN: number, scaleMix: number } & Record<string, number>
  machine: { cpu: string, cores: number, memGb: number, node: string, redis: string, date: string, commit: string, loadavgStart: string, loadavgEnd: string }
  mix: { bodies: number, subjects: number, requestBytes: number, responseBytes: number, outcomes: Record<string, number> }
  micro: Array<{ stage: string, detail: string, usPerCall: number, calls: number }>
  microOtherCpu: number
  startupMs: Record<string, number>
  closed: Record<string, Run>
  fixedRate: Array<{ server: string, mode: 'paced' | 'stock' | 'floor', targetRate: number } & Run>
  redisCommands: CommandCount[]
  decisionCounts: Record<string, { decisions: Record<string, number>, storeErrors: number }>
  policies: {
    sizes: number[]
    http: Array<{ policies: number } & Run>
    inProcess: Array<{ policies: number, usPerDecision: number, distinctPlanKeys: number }>
  }
  subjects: {
    small: { subjects: number } & Run
    large: { subjects: number } & Run
    memory: {
      perSubjectSmall: number
      perSubjectLarge: number
      memoryUsageKey: number
      memoryUsageStoreWritten: number
      encoding: string
      layoutMatches: boolean
      fillSubjectsPerSecond: number
      usedMemoryLargeMb: number
    }
    commandsKnownHistory: CommandCount[]
  }
  loadCompile: { policies: number, files: number, coldMs: number, warmMs: number, readMs: number, compileMs: number }
  /** The step-up path against the allow path: in-process A/B (bench/lib/ab.ts) and over HTTP. */
  paths: { inProcess: PathsResult, inProcessOtherCpu: number, http: { allow: Run, stepUp: Run, bare: Run } }
  totalSeconds: number
}

const f0 = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a'
const f1 = (n: number): string => Number.isFinite(n) ? n.toFixed(1) : 'n/a'
const f2 = (n: number): string => Number.isFinite(n) ? n.toFixed(2) : 'n/a'
const f3 = (n: number): string => Number.isFinite(n) ? n.toFixed(3) : 'n/a'
const pct = (n: number): string => `${(n * 100).toFixed(1)}%`

/** Round trips and calls per decision, from Redis's own counters. */
export function analyseCommands (c: CommandCount): {
  perDecision: Array<[string, number]>
  readRoundTrips: number
  /** The audit log's batch scripts are in readRoundTrips (indistinguishable from reads in commandstats). */
  readIncludesAudit: boolean
  recordRoundTrips: number
  setCalls: number
  auditCommands: number
  clientCommands: number
  roundTrips: number
} {
  const n = Math.max(1, c.decisions)
  const get = (k: string): number => c.calls[k] ?? 0
  const scripts = get('evalsha') + get('eval') + get('evalsha_ro') + get('eval_ro')
  const records = get('hgetall') // only RECORD_LUA runs HGETALL
  const isBaseline = get('exec') > 0
  // With the audit log in Redis, its batch script (one call per ≤ 100 records, XADDs inside) is
  // an EVALSHA too, and Redis cannot tell the scripts apart: the read figure then includes it.
  const readRoundTrips = isBaseline ? get('exec') / n : (scripts - records) / n
  const clientCommands = scripts + get('set') + get('multi') + get('exec') + (isBaseline ? get('hmget') + get('exists') : 0)
  const roundTrips = isBaseline ? get('exec') : scripts + get('set')
  return {
    perDecision: Object.entries(c.calls).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / n]),
    readRoundTrips,
    readIncludesAudit: !isBaseline && get('xadd') > 0,
    recordRoundTrips: records / n,
    setCalls: get('set') / n,
    auditCommands: get('xadd') / n,
    clientCommands: clientCommands / n,
    roundTrips: roundTrips / n
  }
}

interface Target { name: string, figure: string, met: boolean }

export function targets (r: Results): Target[] {
  const A = r.closed[NAMES.A]!
  const B = r.closed[NAMES.B]!
  const M = r.closed[NAMES.M]!
  const R = r.closed[NAMES.R]!
  const paced = r.fixedRate.find(x => x.server === NAMES.M && x.mode === 'paced')!
  const floor = r.fixedRate.find(x => x.mode === 'floor')
  // The read path alone: the Redis-history server whose audit log is in memory (see analyseCommands).
  const rc = analyseCommands(r.redisCommands.find(c => c.server === NAMES.R0)!)
  const [p10, pBig] = r.policies.http
  const policyCost = p10!.rps / pBig!.rps
  const subjectCost = r.subjects.small.rps / r.subjects.large.rps
  const mem = Math.max(r.subjects.memory.perSubjectLarge, r.subjects.memory.memoryUsageKey)
  const stepUpRatio = medianOf(r, 'step_up') / medianOf(r, 'allow')
  return [
    { name: '/decide (memory) ≥ 0.7 × bare req/s', figure: `${f2(M.rps / A.rps)} × (${f0(M.rps)} / ${f0(A.rps)})`, met: M.rps / A.rps >= 0.7 },
    { name: '/decide (Redis) ≥ 0.8 × bare+Redis req/s', figure: `${f2(R.rps / B.rps)} × (${f0(R.rps)} / ${f0(B.rps)})`, met: R.rps / B.rps >= 0.8 },
    { name: '≤ 1 Redis round trip per decision on the read path', figure: `${f3(rc.readRoundTrips)} read round trips per decision (EVALSHA, ${NAMES.R0})`, met: rc.readRoundTrips <= 1.0005 },
    { name: 'p99 ≤ 2 ms at half the maximum rate (memory)', figure: `${f3(paced.p99)} ms at ${f0(paced.targetRate)} req/s (p50 ${f3(paced.p50)} ms; the bare route at the same rate: p99 ${floor ? f3(floor.p99) : 'n/a'} ms)`, met: paced.p99 <= 2 },
    { name: `${f0(pBig!.policies)} policies cost ≤ 1.2 × ${p10!.policies} policies (/decide req/s)`, figure: `${f2(policyCost)} × (${f0(p10!.rps)} / ${f0(pBig!.rps)} req/s)`, met: policyCost <= 1.2 },
    { name: `${f0(r.subjects.large.subjects)} subjects cost ≤ 1.1 × ${f0(r.subjects.small.subjects)} (/decide Redis req/s)`, figure: `${f2(subjectCost)} × (${f0(r.subjects.small.rps)} / ${f0(r.subjects.large.rps)} req/s)`, met: subjectCost <= 1.1 },
    { name: '≤ 1 KB Redis memory per subject (5 devices, 3 countries, location)', figure: `${f0(r.subjects.memory.perSubjectLarge)} B (used_memory Δ / N), ${f0(r.subjects.memory.memoryUsageKey)} B (MEMORY USAGE)`, met: mem <= 1024 },
    { name: `${f0(r.loadCompile.policies)} policies load + compile ≤ 2 s`, figure: `${f0(r.loadCompile.coldMs)} ms (fresh process), ${f0(r.loadCompile.warmMs)} ms warm`, met: r.loadCompile.coldMs <= 2000 },
    { name: 'step-up path ≤ 1.2 × the allow path (in-process A/B, CPU per request)', figure: `${f2(stepUpRatio)} × (${f1(medianOf(r, 'step_up'))} / ${f1(medianOf(r, 'allow'))} µs); over HTTP, server CPU: ${f2(r.paths.http.stepUp.cpuUsPerRequest / r.paths.http.allow.cpuUsPerRequest)} ×`, met: stepUpRatio <= 1.2 }
  ]
}

const medianOf = (r: Results, path: string): number => r.paths.inProcess.paths.find(p => p.path === path)?.usMedian ?? NaN

function runRow (name: string, run: Run, base?: Run): string {
  const ratio = (a: number, b: number | undefined): string => b === undefined ? '—' : `${f2(a / b)}×`
  return `| ${name} | ${f0(run.rps)} | ${ratio(run.rps, base?.rps)} | ${f3(run.p50)} | ${ratio(run.p50, base?.p50)} | ${f3(run.p99)} | ${ratio(run.p99, base?.p99)} | ${f2(run.p999)} | ${f1(run.cpuUsPerRequest)} (${f1(run.sysUsPerRequest)} sys) | ${ratio(run.cpuUsPerRequest, base?.cpuUsPerRequest)} | ${f0(run.bytesPerResponse)} | ${f0(run.requests)} | ${run.errors + run.non2xx} | ${f2(run.otherCpu)} |`
}
const RUN_HEAD = '| scenario | req/s | req/s ÷ baseline | p50 ms | p50 ÷ baseline | p99 ms | p99 ÷ baseline | p99.9 ms | server CPU µs/req (of which kernel) | CPU ÷ baseline | bytes/response | requests | errors | other processes\' CPU (cores) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'

function allRuns (r: Results): Run[] {
  return [...Object.values(r.closed), ...r.fixedRate, ...r.policies.http, r.subjects.small, r.subjects.large]
}

function noise (r: Results): string {
  const runs = allRuns(r)
  const seconds = runs.reduce((s, x) => s + x.seconds, 0)
  const mean = runs.reduce((s, x) => s + x.otherCpu * x.seconds, 0) / seconds
  const max = Math.max(...runs.map(x => x.otherCpu))
  return `mean ${f2(mean)} cores, worst run ${f2(max)} cores (of ${r.machine.cores}); during the microbenchmarks ${f2(r.microOtherCpu)} cores${mean > 0.2 ? ' — **a busy machine: figures are depressed and noisy**' : ''}`
}

export function markdown (r: Results): string {
  const c = r.closed
  const A = c[NAMES.A]!
  const B = c[NAMES.B]!
  const quickNote = r.mode === 'quick'
    ? `\n> **Quick mode** (\`npm run bench -- --quick\`): ${r.params.runS} s runs and reduced sizes (${f0(r.policies.sizes[1]!)} policies, ${f0(r.subjects.large.subjects)} subjects, ${f0(r.loadCompile.policies)} policies to load). A smoke test of the harness, not the published figures.\n`
    : ''
  const L: string[] = []
  L.push('# Benchmark results', '', `Written by \`npm run bench${r.mode === 'quick' ? ' -- --quick' : ''}\` (bench/run.ts) on ${r.machine.date}.`, quickNote)
  L.push('## Machine', '', '| | |', '|---|---|',
    `| CPU | ${r.machine.cpu} |`, `| cores | ${r.machine.cores} |`, `| memory | ${r.machine.memGb} GB |`,
    `| Node.js | ${r.machine.node} |`, `| Redis | ${r.machine.redis} |`, `| date | ${r.machine.date} |`,
    `| commit | ${r.machine.commit} |`, `| load average (start → end) | ${r.machine.loadavgStart} → ${r.machine.loadavgEnd} |`,
    `| duration of the run | ${f0(r.totalSeconds)} s |`,
    `| CPU used by processes outside the benchmark during the load runs | ${noise(r)} |`, '')
  L.push('![req/s and p99 of the baselines and /decide](results.svg)', '')

  L.push('## Targets', '', '| target | figure | |', '|---|---|---|')
  for (const t of targets(r)) L.push(`| ${t.name} | ${t.figure} | ${t.met ? 'met' : '**NOT MET**'} |`)
  L.push('')

  L.push('## Throughput and latency (closed loop)', '',
    `${r.params.connections} connections, pipelining 1, ${r.params.warmupS} s warm-up, then ${r.params.runS} s per scenario in ${r.params.rounds} interleaved round(s) (A, B, memory, Redis, … again) so background load hits all alike. Latency from autocannon's hrtime per request, recorded in µs here (autocannon's own histogram rounds to 1 ms). "server CPU" is the server process's user + system CPU time per request (it excludes Redis and the load generator).`, '', RUN_HEAD)
  L.push(runRow(NAMES.A, A))
  L.push(runRow(NAMES.B, B, A))
  L.push(runRow(`${NAMES.M} (÷ A)`, c[NAMES.M]!, A))
  L.push(runRow(`${NAMES.R} (÷ B)`, c[NAMES.R]!, B))
  L.push(runRow(`${NAMES.R0} (÷ B)`, c[NAMES.R0]!, B))
  L.push('')

  L.push('## p99 at a fixed rate of half the maximum', '',
    '*paced*: autocannon at `overallRate` = ½ × the closed-loop req/s of the same scenario, with each connection\'s share spread evenly (one request every 50/rate s per connection, random phase, Node timers: ~1 ms granularity). A request held back because its connection was still waiting for the previous answer is timed from when it was due, so a stall is not hidden (no coordinated omission); "p99 from send" times every request from its write.',
    '*floor*: the bare route (baseline A) paced at /decide memory\'s rate: what this box, this load generator and Fastify alone give at that rate, the floor under any /decide p99.',
    '*stock* (full runs only): autocannon\'s own `overallRate`, which lets each connection spend its per-second budget back to back at the top of every second: a burst of 50 concurrent requests, then silence. Shown for comparison; it measures burst queueing, not a steady rate.', '',
    '| scenario | mode | target req/s | achieved req/s | p50 ms | p90 ms | p99 ms | p99 ÷ baseline | p99.9 ms | max ms | p99 from send ms | event-loop delay p99 / max ms: load generator | event-loop delay p99 / max ms: server | errors | other processes\' CPU (cores) |', '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const x of r.fixedRate) {
    const baseName = x.server === NAMES.B || x.server === NAMES.R ? (x.server === NAMES.B ? NAMES.A : NAMES.B) : (x.server === NAMES.A ? undefined : NAMES.A)
    const base = baseName === undefined || x.mode === 'floor' ? undefined : r.fixedRate.find(y => y.server === baseName && y.mode === x.mode)
    L.push(`| ${x.server} | ${x.mode} | ${f0(x.targetRate)} | ${f0(x.rps)} | ${f3(x.p50)} | ${f3(x.p90)} | ${f3(x.p99)} | ${base ? `${f2(x.p99 / base.p99)}×` : '—'} | ${f3(x.p999)} | ${f2(x.max)} | ${f3(x.p99FromSend)} | ${f2(x.generatorLagP99)} / ${f1(x.generatorLagMax)} | ${f2(x.serverLagP99)} / ${f1(x.serverLagMax)} | ${x.errors + x.non2xx} | ${f2(x.otherCpu)} |`)
  }
  L.push('')

  const ip = r.paths.inProcess
  const h = r.paths.http
  L.push('## The step-up path against the allow path', '',
    'Two fixed requests through the example policies, history learnt first: **allow** is `profile.read` on a fresh password + OTP session from a known device at home (nothing fires); **step_up** is a 2,500 payout on a password-only session from a device and country the subject never used (three policies fire and merge into one requirement with an RFC 9470 challenge). **bare** is a Fastify route with the service\'s options and the contract\'s schemas and validator answering the step-up answer: parsing, validation, serialization, no decision (bench/lib/ab.ts).', '',
    `In-process A/B: the real app (buildApp, pino at info to /dev/null, memory history, metrics, memory audit) driven by \`app.inject\`, ${ip.rounds} rounds of ${f0(ip.batch)} requests per path in alternating order, CPU time (user + system) per request; the median round and the spread (first to third quartile). Other processes used ${f2(r.paths.inProcessOtherCpu)} cores meanwhile.`, '',
    '| path | CPU µs / request (median) | Q1–Q3 |', '|---|---:|---:|')
  for (const p of ip.paths) L.push(`| ${p.path} | ${f1(p.usMedian)} | ${f1(p.usQ1)}–${f1(p.usQ3)} |`)
  L.push('', `Ratios: ${Object.entries(ip.ratios).map(([k, v]) => `${k} **${f2(v)}**`).join(', ')}.`, '',
    'Over HTTP (closed loop, interleaved rounds, one server per path so each keeps its own history):', '', RUN_HEAD)
  L.push(runRow('bare route, step-up answers', h.bare))
  L.push(runRow('/decide, allow path only (÷ bare)', h.allow, h.bare))
  L.push(runRow('/decide, step-up path only (÷ bare)', h.stepUp, h.bare))
  L.push('', `Server CPU per request, step-up ÷ allow: **${f2(h.stepUp.cpuUsPerRequest / h.allow.cpuUsPerRequest)}×**.`, '')

  L.push('## How cost grows', '', `### Policies: ${r.policies.sizes.join(' vs ')}`, '',
    'Generated sets (bench/lib/workload.ts `generatePolicies`): 3 wildcard policies (`**` ipList deny, `**` impossibleTravel, `*.admin.**` newDevice) and n − 3 policies with one distinct action each (one in ten a CEL condition, one in ten newCountry, one in ten riskScore), compiled with `compilePolicies` from in-memory sources. Requests: the same mix, with actions drawn uniformly from the set\'s own actions (80%) or misses (20%). **The target is judged on /decide req/s over HTTP** (memory store, the whole request path, what a caller sees); the in-process figure (plan + decide only) isolates the engine and is the more sensitive one.', '',
    '| policies | /decide req/s | p50 ms | p99 ms | server CPU µs/req | in-process plan + decide µs | distinct plan keys in the mix | other processes\' CPU (cores) |', '|---:|---:|---:|---:|---:|---:|---:|---:|')
  r.policies.http.forEach((h, i) => {
    const ip = r.policies.inProcess[i]!
    L.push(`| ${f0(h.policies)} | ${f0(h.rps)} | ${f3(h.p50)} | ${f3(h.p99)} | ${f1(h.cpuUsPerRequest)} | ${f2(ip.usPerDecision)} | ${f0(ip.distinctPlanKeys)} | ${f2(h.otherCpu)} |`)
  })
  const [h10, hBig] = r.policies.http
  const [i10, iBig] = r.policies.inProcess
  L.push('', `Cost ratio (${f0(hBig!.policies)} ÷ ${h10!.policies}): HTTP req/s **${f2(h10!.rps / hBig!.rps)}×**, server CPU per request ${f2(hBig!.cpuUsPerRequest / h10!.cpuUsPerRequest)}×, in-process ${f2(iBig!.usPerDecision / i10!.usPerDecision)}×.`, '')

  const s = r.subjects
  L.push(`### Subjects in Redis: ${f0(s.small.subjects)} vs ${f0(s.large.subjects)}`, '',
    `Two fresh redis-servers, filled with ${f0(s.small.subjects)} and ${f0(s.large.subjects)} subjects, each with 5 devices, 3 countries and a location, stamped now (so decisions only read: nothing needs an hourly refresh), in the store's exact layout (bench/lib/workload.ts \`historyFiller\`, streamed through \`redis-cli --pipe\` at ${f0(s.memory.fillSubjectsPerSecond)} subjects/s). One /decide Redis server on each (production wiring: Redis history + Redis audit stream), measured in interleaved rounds, with subjects drawn uniformly from the population (${f0(r.params.scaleMix)} request bodies), one of their known devices, from their home address.`, '',
    '| subjects | /decide req/s | p50 ms | p99 ms | server CPU µs/req | errors | other processes\' CPU (cores) |', '|---:|---:|---:|---:|---:|---:|---:|')
  for (const x of [s.small, s.large]) L.push(`| ${f0(x.subjects)} | ${f0(x.rps)} | ${f3(x.p50)} | ${f3(x.p99)} | ${f1(x.cpuUsPerRequest)} | ${x.errors + x.non2xx} | ${f2(x.otherCpu)} |`)
  L.push('', `Cost ratio (${f0(s.large.subjects)} ÷ ${f0(s.small.subjects)}): **${f2(s.small.rps / s.large.rps)}×** (req/s).`, '')
  L.push('### Redis memory per subject', '', '| measure | bytes |', '|---|---:|',
    `| INFO used_memory Δ ÷ N, first ${f0(s.small.subjects)} subjects | ${f0(s.memory.perSubjectSmall)} |`,
    `| INFO used_memory Δ ÷ N, ${f0(s.large.subjects)} subjects | ${f0(s.memory.perSubjectLarge)} |`,
    `| MEMORY USAGE of one key (SAMPLES 0), encoding ${s.memory.encoding} | ${f0(s.memory.memoryUsageKey)} |`,
    `| MEMORY USAGE of the same history written by the store's own record() (5 calls) | ${f0(s.memory.memoryUsageStoreWritten)} |`,
    '', `The filled key and the store-written key have the same fields: ${s.memory.layoutMatches ? 'yes' : '**no**'}. used_memory with ${f0(s.large.subjects)} subjects: ${f0(s.memory.usedMemoryLargeMb)} MB.`, '')

  L.push('## Per-stage microbenchmarks', '', `In-process, one call at a time over the request mix, ~${f0(r.params.microMs)} ms per stage after a warm-up, no benchmark server running (other processes used ${f2(r.microOtherCpu)} cores meanwhile).`, '',
    '| stage | µs per call | what is measured |', '|---|---:|---|')
  for (const m of r.micro) L.push(`| ${m.stage} | ${f2(m.usPerCall)} | ${m.detail} |`)
  L.push('')

  L.push('## Redis commands and round trips per decision', '',
    `From Redis itself: \`CONFIG RESETSTAT\`, ${f0(r.params.cmdN)} requests of the mix, then \`INFO commandstats\` / \`INFO stats\`. EVALSHA counts as one round trip; the commands a script runs inside Redis (HLEN, HMGET, EXISTS, HSET, HGETALL, HDEL, EXPIRE) are listed but are not round trips. Read scripts = EVALSHA − HGETALL (only the record script runs HGETALL). Redis 7 counts the commands a script runs in \`total_commands_processed\` too, so that column is not a count of round trips. SET = once-only consumption (+ the audit log's step-up references when the audit log is in Redis); XADD = the audit stream, run inside the audit log's batch script (one EVALSHA per up to 100 records, never awaited by a decision). Redis cannot tell that script from the read script, so with the audit log in Redis the read column (marked †) also holds the audit batches; the read-path target uses the server whose audit log is in memory.`, '')
  const cmdRows = [...r.redisCommands, ...s.commandsKnownHistory.map(c => ({ ...c, server: `${c.server} (known history only)` }))]
  L.push('| server | decisions | read round trips / decision | record (write) round trips / decision | SET / decision | XADD / decision | round trips / decision (all) | total_commands_processed / decision | calls per decision, by command |', '|---|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const cc of cmdRows) {
    const a = analyseCommands(cc)
    L.push(`| ${cc.server} | ${f0(cc.decisions)} | ${f3(a.readRoundTrips)}${a.readIncludesAudit ? ' †' : ''} | ${f3(a.recordRoundTrips)} | ${f3(a.setCalls)} | ${f3(a.auditCommands)} | ${f3(a.roundTrips)} | ${f2(cc.totalCommandsProcessed / Math.max(1, cc.decisions))} | ${a.perDecision.map(([k, v]) => `${k} ${f3(v)}`).join(', ')} |`)
  }
  L.push('')

  L.push(`## Load and compile ${f0(r.loadCompile.policies)} policies`, '',
    `${f0(r.loadCompile.policies)} generated policies in ${r.loadCompile.files} YAML files (100 per file) plus lists/threats.txt, in a temp folder; \`loadPolicySet(dir)\` timed in a fresh process (as a server start), then warm.`, '',
    '| | ms |', '|---|---:|', `| loadPolicySet, first call in a fresh process | ${f0(r.loadCompile.coldMs)} |`, `| loadPolicySet, warm (median) | ${f0(r.loadCompile.warmMs)} |`,
    `| of which readPolicyFolder | ${f0(r.loadCompile.readMs)} |`, `| of which compilePolicies (parse, validate, compile, lint, index) | ${f0(r.loadCompile.compileMs)} |`, '')

  L.push('## The request mix', '',
    `${f0(r.mix.bodies)} /decide bodies (bench/lib/workload.ts \`makeMix\`, seeded): ${r.mix.subjects} subjects; 80% from the subject's home address (62.252.0.1 Bromley GB, 203.116.0.1 Singapore, 128.101.101.101 Minneapolis US), 10% from a travel address (Tokyo, Säffle, Amsterdam, Tacoma), 2% from the threat list, 3% IPv6, 5% without an address; 80% the home device, 7% another known device, 8% a new device, 5% none; sessions 65% pwd+otp fresh, 10% passkey, 5% hardware key, 15% password only, 5% an hour old; actions: 40% that only the two \`**\` policies cover (profile.read, settings.theme.update, …), account.*, payments.* (with amounts above and below 1,000), admin.*, acme treasury (tenant and treasury-desk application, once-only); 20% with a tenant, 30% with an application, 10% with a caller riskScore. Mean request ${f0(r.mix.requestBytes)} B, mean response body ${f0(r.mix.responseBytes)} B.`, '',
    'Outcomes of the mix (in-process, second pass, history learnt):', '', '| outcome | share |', '|---|---:|')
  for (const [k, v] of Object.entries(r.mix.outcomes).sort((a, b) => b[1] - a[1])) L.push(`| ${k} | ${pct(v)} |`)
  L.push('', 'Decisions counted by the servers under load (`stepup_decisions_total`), and history store errors (each one fails closed):', '', '| server | decisions | store errors |', '|---|---|---:|')
  for (const [name, d] of Object.entries(r.decisionCounts)) {
    const total = Object.values(d.decisions).reduce((a, b) => a + b, 0)
    L.push(`| ${name} | ${Object.entries(d.decisions).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${pct(v / total)}`).join(', ')} | ${d.storeErrors} |`)
  }
  L.push('')

  L.push('## How it is measured', '',
    '- One process tree on this machine: `bench/run.ts` (autocannon, microbenchmarks, Redis fills) forks one process per server (`bench/server.ts`, `buildApp` as `src/server.ts` wires it, listening on 127.0.0.1:0) and starts redis-server on free ports (never 6379). The load generator, the server and Redis share the cores, as they would on a 2-core box.',
    '- **Baseline A** is a bare Fastify route with buildApp\'s Fastify options (64 KB body limit, the same ajv options and `ip` format, no request logging): it validates the same bodies against the /decide request schema and answers canned /decide responses (the real answers to the mix, serialized with the same response schema), so request and response sizes match (see bytes/response). No swagger, no under-pressure, no policy work, no decision log.',
    '- **Baseline B** is A plus one Redis round trip: `MULTI; HMGET (3 fields); EXISTS; EXEC` on a per-subject hash, with the history store\'s client options.',
    '- **/decide memory**: memory history store and memory audit log (the default without REDIS_URL). **/decide Redis**: Redis history store and Redis audit stream (what src/server.ts builds with REDIS_URL). **/decide Redis (memory audit)** isolates the history store from the audit stream.',
    `- Logging: pino at \`info\` (the default level) to /dev/null through \`pino.destination({ sync: false, minLength: 4096 })\`, the destination src/server.ts uses (flushed every second), so the one line per decision is paid for. Server start-up (build + listen, geo database included): ${Object.entries(r.startupMs).map(([k, v]) => `${k} ${f0(v)} ms`).join(', ')}.`,
    `- Closed loop: ${r.params.connections} connections, pipelining 1. Each connection cycles through its own slice of the mix. Fixed rate: see above.`,
    '- Ratios: req/s ÷ the baseline (higher is better; the targets), latency ÷ the baseline (lower is better). Policy and subject cost = req/s of the small case ÷ req/s of the large case.',
    '- Profiles: `node --cpu-prof --cpu-prof-dir bench/.tmp/prof --import tsx bench/profile.ts` (an in-process decision loop), then `npx tsx bench/summarize-profile.ts <file.cpuprofile>`; `npm run bench -- --profile-servers` profiles every server process under load.', '')
  return L.join('\n')
}

// ---- the chart ------------------------------------------------------------------------------

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function niceMax (v: number): number {
  const p = 10 ** Math.floor(Math.log10(v || 1))
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p
  return 10 * p
}

export function svg (r: Results): string {
  const order = [NAMES.A, NAMES.B, NAMES.M, NAMES.R] as const
  const labels = ['baseline A', 'baseline B', '/decide', '/decide']
  const sub = ['bare', 'bare + Redis', 'memory', 'Redis']
  const colors = ['#9aa5b1', '#616e7c', '#2f80ed', '#f2994a']
  const W = 960
  const H = 420
  const top = 70
  const bottom = 340
  const plotH = bottom - top
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">stepup-pdp: throughput and p99, baselines vs /decide</text>`)
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${esc(`${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}, ${r.machine.date.slice(0, 10)}${r.mode === 'quick' ? ' (quick mode)' : ''}`)}</text>`)

  const axis = (x0: number, width: number, max: number, unit: string, title: string): void => {
    out.push(`<text x="${x0 + width / 2}" y="${top - 10}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`)
    for (let k = 0; k <= 4; k++) {
      const y = bottom - (plotH * k) / 4
      out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + width}" y2="${y}" stroke="#e4e7eb"/>`)
      const v = (max * k) / 4
      out.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end" fill="#555">${esc(v >= 100 ? Math.round(v).toLocaleString('en-US') : String(+v.toFixed(2)))}</text>`)
    }
    out.push(`<line x1="${x0}" y1="${bottom}" x2="${x0 + width}" y2="${bottom}" stroke="#333"/>`)
    out.push(`<text x="${x0 - 44}" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 ${x0 - 44} ${top + plotH / 2})" fill="#555">${esc(unit)}</text>`)
  }
  const bar = (x: number, w: number, v: number, max: number, color: string, label: string, opacity = 1): void => {
    const h = Math.max(1, (plotH * v) / max)
    const r1 = (n: number): string => n.toFixed(1)
    out.push(`<rect x="${r1(x)}" y="${r1(bottom - h)}" width="${r1(w)}" height="${r1(h)}" fill="${color}" fill-opacity="${opacity}"/>`)
    out.push(`<text x="${r1(x + w / 2)}" y="${r1(bottom - h - 4)}" text-anchor="middle" font-size="11">${esc(label)}</text>`)
  }
  const groupLabels = (x0: number, groupW: number): void => {
    order.forEach((_, i) => {
      const cx = x0 + groupW * i + groupW / 2
      out.push(`<text x="${cx}" y="${bottom + 18}" text-anchor="middle">${esc(labels[i]!)}</text>`)
      out.push(`<text x="${cx}" y="${bottom + 33}" text-anchor="middle" fill="#555">${esc(sub[i]!)}</text>`)
    })
  }

  // Panel 1: req/s.
  const x1 = 90
  const w1 = 360
  const rps = order.map(n => r.closed[n]!.rps)
  const maxR = niceMax(Math.max(...rps))
  axis(x1, w1, maxR, 'requests per second', 'Throughput, closed loop (req/s, higher is better)')
  const g1 = w1 / order.length
  rps.forEach((v, i) => bar(x1 + g1 * i + g1 * 0.2, g1 * 0.6, v, maxR, colors[i]!, Math.round(v).toLocaleString('en-US')))
  groupLabels(x1, g1)

  // Panel 2: p99, closed loop and at half the maximum rate.
  const x2 = 570
  const w2 = 360
  const closedP99 = order.map(n => r.closed[n]!.p99)
  const pacedP99 = order.map(n => r.fixedRate.find(x => x.server === n && x.mode === 'paced')?.p99 ?? NaN)
  const maxP = niceMax(Math.max(...closedP99, ...pacedP99.filter(Number.isFinite)))
  axis(x2, w2, maxP, 'milliseconds', 'p99 latency (ms, lower is better)')
  const g2 = w2 / order.length
  order.forEach((_, i) => {
    bar(x2 + g2 * i + g2 * 0.1, g2 * 0.38, closedP99[i]!, maxP, colors[i]!, closedP99[i]!.toFixed(2))
    if (Number.isFinite(pacedP99[i]!)) bar(x2 + g2 * i + g2 * 0.52, g2 * 0.38, pacedP99[i]!, maxP, colors[i]!, pacedP99[i]!.toFixed(2), 0.45)
  })
  groupLabels(x2, g2)
  const ly = H - 28
  out.push(`<rect x="${x2}" y="${ly - 10}" width="12" height="12" fill="#616e7c"/><text x="${x2 + 18}" y="${ly}">closed loop, ${r.params.connections} connections</text>`)
  out.push(`<rect x="${x2 + 190}" y="${ly - 10}" width="12" height="12" fill="#616e7c" fill-opacity="0.45"/><text x="${x2 + 208}" y="${ly}">fixed rate, ½ × max (paced)</text>`)
  out.push('</svg>')
  return out.join('\n')
}

export function writeReport (r: Results, dir: string): string[] {
  const files = [join(dir, 'RESULTS.md'), join(dir, 'results.svg'), join(dir, 'results.json')]
  writeFileSync(files[0]!, markdown(r))
  writeFileSync(files[1]!, svg(r))
  writeFileSync(files[2]!, JSON.stringify(r, null, 2))
  return files
}

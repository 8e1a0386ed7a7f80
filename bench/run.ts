/**
 * `npm run bench [-- --quick] [-- --profile-servers]`: the benchmark suite of issue #5.
 *
 * One process tree: this process (load generator, microbenchmarks, Redis fills), one forked
 * process per server under test (bench/server.ts), and redis-server processes on free ports.
 * Writes bench/RESULTS.md, bench/results.svg and bench/results.json (with --quick: the same
 * under bench/.tmp/, so a CI smoke never overwrites the published figures).
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { decide } from '../src/engine/decide.js'
import type { Facts, HistoryFact } from '../src/engine/model.js'
import { normalizeDecideBody, toDecideResponse, type DecideBody } from '../src/contract/index.js'
import { compilePolicies } from '../src/policy/compile.js'
import { loadPolicySet } from '../src/policy/load.js'
import { openGeoLookup, type GeoLookup } from '../src/signals/geo.js'
import type { HistoryStore } from '../src/signals/history.js'
import { createMemoryHistoryStore } from '../src/signals/memory-history.js'
import { createRedisHistoryStore } from '../src/signals/redis-history.js'
import type { CompiledPolicySet } from '../src/engine/policy-set.js'
import { load, toRequests, type BenchRequest, type LoadResult } from './lib/load.js'
import { closedLoop as closedLoopRuns, measure as measureRun, setLog, startServer as startServerProcess, strip, warm as warmUp, type Measured, type Server } from './lib/servers.js'
import { buildPipeline, devNullLogger, requestValidator, responseSerializer, timeConcurrent, timeIt } from './lib/pipeline.js'
import { commandCalls, info, pipeFill, redisAvailable, resp, startRedis, type BenchRedis } from './lib/redis.js'
import { NAMES, writeReport, type Results, type Run } from './lib/report.js'
import { generatedActions, generatePolicies, HOME_IPS, historyFiller, makeMix, rng, subjectId, writePolicyFolder } from './lib/workload.js'
import type { ServerSpec } from './server.js'
import { summarizeDir } from './summarize-profile.js'
import { comparePaths, formatPaths, pathBodies } from './lib/ab.js'
import { cpuWindow, track } from './lib/cpu.js'
import { benchDir, root, script } from './lib/paths.js'

const here = benchDir
const quick = process.argv.includes('--quick')
const profileServers = process.argv.includes('--profile-servers')

const P = quick
  ? { connections: 50, warmupS: 0.5, runS: 2, rounds: 1, rateS: 2, policiesLarge: 1000, subjectsLarge: 20_000, loadCompile: 1000, microMs: 100, cmdN: 500, mix: 2500, genMix: 5000, scaleMix: 5000 }
  : { connections: 50, warmupS: 3, runS: 12, rounds: 4, rateS: 8, policiesLarge: 10_000, subjectsLarge: 1_000_000, loadCompile: 10_000, microMs: 1000, cmdN: 5000, mix: 5000, genMix: 20_000, scaleMix: 50_000 }
const SUBJECTS_SMALL = 1000
const POLICIES_SMALL = 10
const MIX_POPULATION = 200

const outDir = quick ? join(here, '.tmp') : here
const work = mkdtempSync(join(tmpdir(), 'stepup-bench-'))
const profDir = join(here, '.tmp', 'prof')
const t0 = Date.now()
const log = (msg: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`)

// ---- servers --------------------------------------------------------------------------------

const profiled: Array<{ dir: string, label: string }> = []
setLog(log)

function startServer (name: string, spec: ServerSpec): Promise<Server> {
  let dir: string | undefined
  if (profileServers) {
    dir = join(profDir, `run-${process.pid}`, name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, ''))
    profiled.push({ dir, label: `Server profile under load: ${name}` })
  }
  return startServerProcess(name, spec, dir)
}

const measure = (server: Server, requests: BenchRequest[], seconds: number, extra: { rate?: number, paced?: boolean } = {}): Promise<Measured> =>
  measureRun(server, requests, seconds, P, extra)
const warm = (server: Server, requests: BenchRequest[]): Promise<LoadResult> => warmUp(server, requests, P)
const closedLoop = (scenarios: Array<{ server: Server, requests: BenchRequest[] }>): Promise<Map<string, Run>> => closedLoopRuns(scenarios, P)

async function decisionCounts (server: Server): Promise<{ decisions: Record<string, number>, storeErrors: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const decisions: Record<string, number> = {}
  let storeErrors = 0
  for (const line of text.split('\n')) {
    const d = /^stepup_decisions_total\{decision="(\w+)",event="([\w.]+)"\} (\d+)/.exec(line)
    if (d) decisions[`${d[1]} (${d[2]})`] = (decisions[`${d[1]} (${d[2]})`] ?? 0) + Number(d[3])
    const e = /^stepup_history_errors_total\{[^}]*\} (\d+)/.exec(line)
    if (e) storeErrors += Number(e[1])
  }
  return { decisions, storeErrors }
}

/** Commands and round trips, counted by Redis itself over `n` decisions. */
async function redisCommands (redis: BenchRedis, server: Server, requests: BenchRequest[], n: number): Promise<Results['redisCommands'][number]> {
  await redis.admin.config('RESETSTAT')
  const r = await load({ url: `${server.url}/decide`, requests, connections: P.connections, seconds: 0, amount: n })
  await sleep(300) // the audit log flushes every 50 ms
  const calls = await commandCalls(redis.admin)
  const stats = await info(redis.admin, 'stats')
  for (const admin of ['info', 'config', 'config|resetstat']) delete calls[admin]
  return { server: server.name, decisions: r.requests, calls, totalCommandsProcessed: Number(stats.total_commands_processed) }
}

// ---- the run ----------------------------------------------------------------------------------

async function main (): Promise<void> {
  if (!redisAvailable()) throw new Error('redis-server and redis-cli must be on PATH')
  mkdirSync(outDir, { recursive: true })
  const cpuModel = (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.+)/)?.[1] ?? cpus()[0]?.model ?? 'unknown').trim()
  const results: Results = {
    mode: quick ? 'quick' : 'full',
    params: P,
    machine: {
      cpu: cpuModel,
      cores: cpus().length,
      memGb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      redis: execFileSync('redis-server', ['--version']).toString().match(/v=(\S+)/)?.[1] ?? '?',
      date: new Date().toISOString(),
      commit: gitCommit(),
      loadavgStart: loadavg().map(x => x.toFixed(2)).join(' '),
      loadavgEnd: ''
    }
  } as unknown as Results

  const redis = await startRedis()
  track(redis.pid)
  log(`redis-server ${results.machine.redis} on port ${redis.port}`)
  const nowS = Math.floor(Date.now() / 1000)
  const examples = (await loadPolicySet(join(root, 'policies'))).set
  const geo = await openGeoLookup({})

  // The request mix, and the real /decide answers to it (second pass: history learnt).
  const mix = makeMix({ count: P.mix, seed: 42, nowS, population: MIX_POPULATION, variety: 'mixed' })
  const inproc = buildPipeline(examples, geo, createMemoryHistoryStore({ maxSubjects: 100_000 }), devNullLogger())
  for (const body of mix) await inproc.handle(body)
  const responses: unknown[] = []
  const outcome: Record<string, number> = {}
  for (const body of mix) {
    const json = await inproc.handle(body)
    const parsed = JSON.parse(json) as { decision: string, reasons: Array<{ policy: string }> }
    responses.push(parsed)
    const key = `${parsed.decision}${parsed.reasons.length === 0 ? ' (no policy fired)' : ''}`
    outcome[key] = (outcome[key] ?? 0) + 1
  }
  const responsesFile = join(work, 'responses.json')
  writeFileSync(responsesFile, JSON.stringify(responses))
  const requestBytes = mix.reduce((s, b) => s + JSON.stringify(b).length, 0) / mix.length
  const responseBytes = responses.reduce<number>((s, r) => s + JSON.stringify(r).length, 0) / responses.length
  results.mix = {
    bodies: mix.length,
    subjects: MIX_POPULATION,
    requestBytes,
    responseBytes,
    outcomes: Object.fromEntries(Object.entries(outcome).map(([k, v]) => [k, v / mix.length]))
  }
  log(`mix: ${mix.length} bodies, ${requestBytes.toFixed(0)} B requests, ${responseBytes.toFixed(0)} B responses, ${JSON.stringify(results.mix.outcomes)}`)

  // Baseline B reads a small hash per subject, like the history read.
  const bPipe = redis.admin.pipeline()
  for (let s = 0; s < MIX_POPULATION; s++) {
    bPipe.hset(`bench:b:{${subjectId(s)}}`, 'l', JSON.stringify([nowS, 51.4, 0.0, 5, 'GB', 'Bromley']), 'c:GB', String(nowS), 'd:x', String(nowS))
  }
  await bPipe.exec()

  // ---- microbenchmarks (nothing else running) ----
  log('microbenchmarks')
  const microWindow = cpuWindow()
  results.micro = await microbenchmarks(examples, geo, mix, redis)
  results.microOtherCpu = microWindow().other
  for (const m of results.micro) log(`  ${m.stage}: ${m.usPerCall.toFixed(2)} µs`)

  log('step-up vs allow: in-process A/B (app.inject, alternating batches)')
  const pathsWindow = cpuWindow()
  const inProcessPaths = await comparePaths({ geo, policiesDir: join(root, 'policies'), batch: quick ? 300 : 1000, rounds: quick ? 4 : 12, nowS })
  const inProcessOtherCpu = pathsWindow().other
  for (const line of formatPaths(inProcessPaths)) log(line)

  // ---- baselines and /decide ----
  log('starting servers')
  const [A, B, M, R, R0] = await Promise.all([
    startServer(NAMES.A, { kind: 'bare', responsesFile }),
    startServer(NAMES.B, { kind: 'bare', responsesFile, redisUrl: redis.url }),
    startServer(NAMES.M, { kind: 'decide', history: 'memory', audit: 'memory', policiesDir: join(root, 'policies') }),
    startServer(NAMES.R, { kind: 'decide', history: 'redis', audit: 'redis', redisUrl: redis.url, policiesDir: join(root, 'policies') }),
    startServer(NAMES.R0, { kind: 'decide', history: 'redis', audit: 'memory', redisUrl: redis.url, policiesDir: join(root, 'policies') })
  ])
  results.startupMs = Object.fromEntries([A, B, M, R, R0].map(s => [s!.name, s!.startupMs]))
  const requests = toRequests(mix, '/decide')
  for (const s of [A, B, M, R, R0]) await warm(s!, requests)
  log('closed loop')
  const closed = await closedLoop([A, B, M, R, R0].map(server => ({ server: server!, requests })))
  results.closed = Object.fromEntries(closed)

  log('fixed rate: half the measured maximum')
  results.fixedRate = []
  for (const s of [A!, B!, M!, R!]) {
    const rate = Math.round(closed.get(s.name)!.rps / 2)
    const r = await measure(s, requests, P.rateS, { rate, paced: true })
    results.fixedRate.push({ server: s.name, mode: 'paced', targetRate: rate, ...strip(r) })
    log(`  ${s.name} paced @ ${rate}/s: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`)
  }
  // The floor: the bare route at /decide memory's rate, on the same box with the same generator.
  {
    const rate = Math.round(closed.get(M!.name)!.rps / 2)
    const r = await measure(A!, requests, P.rateS, { rate, paced: true })
    results.fixedRate.push({ server: A!.name, mode: 'floor', targetRate: rate, ...strip(r) })
    log(`  ${A!.name} paced @ ${rate}/s (the /decide memory rate): p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`)
  }
  // autocannon's own rate limiting, for comparison (full runs only).
  for (const s of quick ? [] : [A!, M!]) {
    const rate = Math.round(closed.get(s.name)!.rps / 2)
    const r = await measure(s, requests, P.rateS, { rate, paced: false })
    results.fixedRate.push({ server: s.name, mode: 'stock', targetRate: rate, ...strip(r) })
    log(`  ${s.name} stock overallRate @ ${rate}/s: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`)
  }

  log('Redis commands per decision')
  results.redisCommands = [
    await redisCommands(redis, R!, requests, P.cmdN),
    await redisCommands(redis, R0!, requests, P.cmdN),
    await redisCommands(redis, B!, requests, P.cmdN)
  ]
  results.decisionCounts = { [M!.name]: await decisionCounts(M!), [R!.name]: await decisionCounts(R!), [R0!.name]: await decisionCounts(R0!) }
  for (const s of [A, B, M, R, R0]) await s!.close()

  log('step-up vs allow over HTTP')
  results.paths = { inProcess: inProcessPaths, inProcessOtherCpu, http: await pathsOverHttp(examples, geo, nowS) }

  // ---- how cost grows: policies ----
  log(`policies: ${POLICIES_SMALL} vs ${P.policiesLarge}`)
  results.policies = await policyScaling(geo, nowS)

  // ---- how cost grows: subjects ----
  log(`subjects: ${SUBJECTS_SMALL} vs ${P.subjectsLarge}`)
  results.subjects = await subjectScaling(geo, nowS)

  // ---- load and compile ----
  log(`load + compile ${P.loadCompile} policies`)
  results.loadCompile = loadCompile(P.loadCompile)
  log(`  cold ${results.loadCompile.coldMs.toFixed(0)} ms, warm ${results.loadCompile.warmMs.toFixed(0)} ms`)

  await redis.stop()
  geo.close()
  results.machine.loadavgEnd = loadavg().map(x => x.toFixed(2)).join(' ')
  const commitEnd = gitCommit()
  if (commitEnd !== results.machine.commit) {
    results.machine.commit = `${results.machine.commit} → ${commitEnd} (**the code changed during the run**: servers started at different times may run different code)`
    log(`  ! the code changed during the run: ${results.machine.commit}`)
  }
  results.totalSeconds = (Date.now() - t0) / 1000
  const files = writeReport(results, outDir)
  for (const p of profiled) files.push(`${p.dir}.md (${summarizeDir(p.dir, p.label).split('\n')[2]})`)
  rmSync(work, { recursive: true, force: true })
  log(`wrote ${files.join(', ')}`)
}

/** HEAD, and whether src/ or policies/ differ from it (a digest of the diff, to notice edits during the run). */
function gitCommit (): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim()
    const diff = execFileSync('git', ['diff', 'HEAD', '--', 'src', 'policies'], { cwd: root })
    return diff.length > 0 ? `${head} + uncommitted src/ or policies/ changes (${createHash('sha256').update(diff).digest('hex').slice(0, 8)})` : head
  } catch {
    return 'unknown'
  }
}

// ---- microbenchmarks ----------------------------------------------------------------------

async function microbenchmarks (set: CompiledPolicySet, geo: GeoLookup, mix: DecideBody[], redis: BenchRedis): Promise<Results['micro']> {
  const ms = P.microMs
  const out: Results['micro'] = []
  const add = (stage: string, detail: string, r: { usPerCall: number, calls: number }): void => { out.push({ stage, detail, ...r }) }
  const validate = requestValidator()
  const assurance = set.assurance
  add('request validation', 'ajv-compiled decideRequestSchema (Fastify\'s ajv options)', await timeIt(mix, ms, b => validate(b)))
  add('request normalization', 'normalizeDecideBody (subject, claims checks, device hash)', await timeIt(mix, ms, b => normalizeDecideBody(b, assurance)))
  add('validation + normalization', 'both, as the route runs them', await timeIt(mix, ms, b => validate(b) && normalizeDecideBody(b, assurance)))

  const ips = mix.map(b => b.ip).filter((x): x is string => x !== undefined)
  add('geo lookup (mix)', `openGeoLookup().lookup over the mix's ${new Set(ips).size} addresses (records cached)`, await timeIt(ips, ms, ip => geo.lookup(ip)))
  const r = rng(7)
  const randomIps = Array.from({ length: 50_000 }, () => `${1 + Math.floor(r() * 222)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`)
  add('geo lookup (random IPv4)', '50,000 random public IPv4 addresses (mostly distinct records)', await timeIt(randomIps, ms, ip => geo.lookup(ip)))

  // Facts as the service gathers them, from a memory store that has learnt the mix.
  const memory = createMemoryHistoryStore({ maxSubjects: 100_000 })
  const pipe = buildPipeline(set, geo, memory)
  for (let i = 0; i < 2; i++) for (const b of mix) await pipe.handle(b)
  const nowS = Date.now() / 1000
  const prepared = await Promise.all(mix.map(async body => {
    const request = normalizeDecideBody(body, assurance)
    const plan = set.plan(request)
    const g = request.ip !== undefined ? geo.lookup(request.ip) : { status: 'none' as const }
    const read = await memory.read({ tenant: request.tenant, subject: request.subjectId }, {
      history: plan.needs.history, deviceId: request.deviceId, country: g.status === 'found' ? g.location.country : undefined, resource: request.resource
    }, nowS)
    const history: HistoryFact = read.snapshot ? { status: 'found', snapshot: read.snapshot } : { status: 'skipped' }
    const facts: Facts = { request, geo: g, history, ipLists: request.ip !== undefined ? set.ipLists.lookup(request.ip) : [], onceOnly: { status: 'found', consumed: false } }
    return { request, plan, facts }
  }))
  add('plan lookup', 'set.plan(request) (cached per tenant/application/action)', await timeIt(prepared, ms, p => set.plan(p.request)))
  add('engine evaluation', 'decide(set, plan, facts, now), example policies', await timeIt(prepared, ms, p => decide(set, p.plan, p.facts, nowS)))

  const serialize = responseSerializer()
  const shaped = prepared.map(p => {
    const d = decide(set, p.plan, p.facts, nowS)
    return toDecideResponse({ decisionId: '01234567-89ab-7def-8123-456789abcdef', policyRevision: set.revision, decision: d }) as { decision: string, decisionId: string }
  })
  add('response serialization', 'fast-json-stringify(decisionSchema)', await timeIt(shaped, ms, s => serialize(s)))
  add('response serialization (JSON.stringify)', 'for comparison', await timeIt(shaped, ms, s => JSON.stringify(s)))

  const logger = devNullLogger()
  add('decision log line', 'pino info, the service\'s fields, buffered destination as src/server.ts (/dev/null)', await timeIt(shaped, ms, s => logger.info({ decisionId: s.decisionId, decision: s.decision, event: 'auth.allowed', policyRevision: set.revision, tenant: undefined, subject: 'user-0000001', action: 'payments.payout', policies: ['a', 'b'] }, 'decision')))

  const queries = prepared.map(p => ({
    key: { tenant: p.request.tenant, subject: p.request.subjectId },
    query: { history: true, deviceId: p.request.deviceId, country: p.facts.geo.status === 'found' ? p.facts.geo.location.country : undefined, resource: p.request.resource }
  }))
  add('history read (memory)', 'createMemoryHistoryStore().read', await timeIt(queries, ms, q => memory.read(q.key, q.query, nowS)))

  const store: HistoryStore = createRedisHistoryStore({ url: redis.url, commandTimeoutMs: 1000 })
  while (!(await store.ping())) await sleep(20)
  const redisPipe = buildPipeline(set, geo, store)
  for (const b of mix) await redisPipe.handle(b) // learn the mix into Redis
  add('history read (Redis, one at a time)', 'createRedisHistoryStore().read: one EVALSHA round trip on loopback', await timeIt(queries, ms, q => store.read(q.key, q.query, nowS)))
  add('history read (Redis, 50 in flight)', 'the same, 50 concurrent: amortised µs per read', await timeConcurrent(queries, ms, 50, q => store.read(q.key, q.query, nowS)))
  await store.close()

  add('whole pipeline in-process (memory)', 'validate + normalize + service.decide (+ log, metrics, audit) + serialize, no HTTP', await timeIt(mix, ms, b => pipe.handle(b)))
  return out
}

// ---- step-up vs allow over HTTP --------------------------------------------------------------

/** Two /decide memory servers, one fed only the allow path, one only the step-up path, and the bare route answering the step-up answers: interleaved rounds. */
async function pathsOverHttp (set: CompiledPolicySet, geo: GeoLookup, nowS: number): Promise<Results['paths']['http']> {
  const allow = pathBodies('allow', nowS, 200)
  const stepUp = pathBodies('step_up', nowS, 200)
  const pipe = buildPipeline(set, geo, createMemoryHistoryStore({ maxSubjects: 1000 }), devNullLogger())
  const answers: unknown[] = []
  for (const body of stepUp) answers.push(JSON.parse(await pipe.handle(body)))
  const answersFile = join(work, 'step-up-answers.json')
  writeFileSync(answersFile, JSON.stringify(answers))
  const names = { allow: '/decide memory, allow path only', stepUp: '/decide memory, step-up path only', bare: 'bare route, step-up answers' }
  const [SA, SS, SB] = await Promise.all([
    startServer(names.allow, { kind: 'decide', history: 'memory', audit: 'memory', policiesDir: join(root, 'policies') }),
    startServer(names.stepUp, { kind: 'decide', history: 'memory', audit: 'memory', policiesDir: join(root, 'policies') }),
    startServer(names.bare, { kind: 'bare', responsesFile: answersFile })
  ])
  const scenarios = [{ server: SA!, requests: toRequests(allow, '/decide') }, { server: SS!, requests: toRequests(stepUp, '/decide') }, { server: SB!, requests: toRequests(stepUp, '/decide') }]
  for (const x of scenarios) await warm(x.server, x.requests)
  const closed = await closedLoopRuns(scenarios, { ...P, runS: P.runS / 2, rounds: Math.max(2, P.rounds / 2) })
  for (const x of scenarios) await x.server.close()
  return { allow: closed.get(names.allow)!, stepUp: closed.get(names.stepUp)!, bare: closed.get(names.bare)! }
}

// ---- policies ---------------------------------------------------------------------------------

async function policyScaling (geo: GeoLookup, nowS: number): Promise<Results['policies']> {
  const sizes = [POLICIES_SMALL, P.policiesLarge]
  const gens = sizes.map(n => generatePolicies(n))
  const servers = await Promise.all(sizes.map((n, i) => {
    const file = join(work, `policies-${n}.json`)
    writeFileSync(file, JSON.stringify(gens[i]!.sources))
    return startServer(`/decide memory, ${n} policies`, { kind: 'decide', history: 'memory', audit: 'memory', sourcesFile: file })
  }))
  // The same mix for both sets, except the actions: uniformly over the set's own actions.
  const bodies = gens.map(g => makeMix({ count: P.genMix, seed: 99, nowS, population: MIX_POPULATION, variety: 'mixed', actions: generatedActions(g.actions) }))
  const reqs = bodies.map(b => toRequests(b, '/decide'))

  // In-process (servers idle): plan + decide over the same bodies, facts from a memory store that learnt them.
  const inproc: Results['policies']['inProcess'] = []
  for (const [i, n] of sizes.entries()) {
    const set = compilePolicies(gens[i]!.sources).set!
    const memory = createMemoryHistoryStore({ maxSubjects: 100_000 })
    const pipe = buildPipeline(set, geo, memory)
    for (const b of bodies[i]!) await pipe.handle(b)
    const prepared = await Promise.all(bodies[i]!.map(async body => {
      const request = normalizeDecideBody(body, set.assurance)
      const plan = set.plan(request)
      const g = request.ip !== undefined ? geo.lookup(request.ip) : { status: 'none' as const }
      const read = await memory.read({ tenant: request.tenant, subject: request.subjectId }, { history: plan.needs.history, deviceId: request.deviceId, country: g.status === 'found' ? g.location.country : undefined }, nowS)
      const facts: Facts = { request, geo: g, history: read.snapshot ? { status: 'found', snapshot: read.snapshot } : { status: 'skipped' }, ipLists: request.ip !== undefined ? set.ipLists.lookup(request.ip) : [], onceOnly: { status: 'skipped' } }
      return { request, facts }
    }))
    const t = await timeIt(prepared, P.microMs, p => decide(set, set.plan(p.request), p.facts, nowS))
    const distinct = new Set(bodies[i]!.map(b => `${b.tenant ?? ''}|${b.application ?? ''}|${b.action}`)).size
    inproc.push({ policies: set.policies.length, usPerDecision: t.usPerCall, distinctPlanKeys: distinct })
    log(`  in-process plan + decide, ${n} policies: ${t.usPerCall.toFixed(2)} µs (${distinct} distinct plan keys)`)
  }
  for (const [i, s] of servers.entries()) await warm(s, reqs[i]!)
  const closed = await closedLoop(servers.map((server, i) => ({ server, requests: reqs[i]! })))
  for (const s of servers) await s.close()
  return { sizes, http: sizes.map((n, i) => ({ policies: n, ...closed.get(servers[i]!.name)! })), inProcess: inproc }
}

// ---- subjects -------------------------------------------------------------------------------

async function subjectScaling (geo: GeoLookup, nowS: number): Promise<Results['subjects']> {
  // Two redis-servers, one per population, and one /decide server on each: the two cases are
  // measured in interleaved rounds, so neither gets a warmer JIT or a quieter machine.
  const [small, large] = await Promise.all([startRedis(), startRedis()])
  track(small.pid)
  track(large.pid)
  const homes = HOME_IPS.map(h => { const g = geo.lookup(h.ip); if (g.status !== 'found') throw new Error(`no location for ${h.ip}`); return g.location })
  const retentionDays = 30 // the example policies' longest window (learning.retentionDays)
  const fill = historyFiller(homes, nowS, retentionDays * 86400)
  const produce = (i: number): string => fill(i).map(resp).join('')
  const used = async (r: BenchRedis): Promise<number> => Number((await info(r.admin, 'memory')).used_memory)

  const s0 = await used(small)
  await pipeFill(small.port, 0, SUBJECTS_SMALL, produce)
  const s1 = await used(small)
  const l0 = await used(large)
  const t = performance.now()
  await pipeFill(large.port, 0, P.subjectsLarge, produce)
  const fillLargeMs = performance.now() - t
  const l1 = await used(large)
  log(`  filled ${f(P.subjectsLarge)} subjects in ${(fillLargeMs / 1000).toFixed(1)} s (${f(await large.admin.dbsize())} keys, ${((l1 - l0) / 2 ** 20).toFixed(0)} MB)`)

  const sampleKey = fill(0)[0]![1]!
  const sampleUsage = Number(await small.admin.call('MEMORY', 'USAGE', sampleKey, 'SAMPLES', '0'))
  const encoding = String(await small.admin.call('OBJECT', 'ENCODING', sampleKey))

  // The same history written by the store itself (5 record calls), to check the fill's layout.
  const store = createRedisHistoryStore({ url: small.url, commandTimeoutMs: 1000, keyPrefix: 'checks:' })
  while (!(await store.ping())) await sleep(20)
  const checkSubject = { tenant: undefined, subject: subjectId(0) }
  const countries = HOME_IPS.map(h => h.country)
  for (let k = 0; k < 5; k++) {
    await store.record(checkSubject, { deviceId: fill(0)[0]![2 + k * 2]!.slice(2), ...(k < 3 ? { country: countries[k] } : {}), ...(k === 0 ? { location: homes[0]! } : {}) }, nowS, retentionDays)
  }
  await store.close()
  const storeKey = sampleKey.replace(/^stepup:/, 'checks:')
  const storeUsage = Number(await small.admin.call('MEMORY', 'USAGE', storeKey, 'SAMPLES', '0'))
  const layoutMatches = JSON.stringify((await small.admin.hkeys(sampleKey)).sort()) === JSON.stringify((await small.admin.hkeys(storeKey)).sort())
  await small.admin.del(storeKey)
  log(`  memory: ${((s1 - s0) / SUBJECTS_SMALL).toFixed(0)} B/subject (${f(SUBJECTS_SMALL)}), ${((l1 - l0) / P.subjectsLarge).toFixed(0)} B/subject (${f(P.subjectsLarge)}), MEMORY USAGE ${sampleUsage} B (${encoding}); store-written ${storeUsage} B, same fields: ${layoutMatches}`)

  const spec = (r: BenchRedis): ServerSpec => ({ kind: 'decide', history: 'redis', audit: 'redis', redisUrl: r.url, policiesDir: join(root, 'policies') })
  const [S, L] = await Promise.all([
    startServer(`/decide Redis, ${f(SUBJECTS_SMALL)} subjects`, spec(small)),
    startServer(`/decide Redis, ${f(P.subjectsLarge)} subjects`, spec(large))
  ])
  const reqS = toRequests(makeMix({ count: P.scaleMix, seed: 5, nowS, population: SUBJECTS_SMALL, variety: 'known' }), '/decide')
  const reqL = toRequests(makeMix({ count: P.scaleMix, seed: 7, nowS, population: P.subjectsLarge, variety: 'known' }), '/decide')
  await warm(S!, reqS)
  await warm(L!, reqL)
  const closed = await closedLoop([{ server: S!, requests: reqS }, { server: L!, requests: reqL }])
  const cmdSmall = await redisCommands(small, S!, reqS, P.cmdN)
  const cmdLarge = await redisCommands(large, L!, reqL, P.cmdN)
  await S!.close()
  await L!.close()
  await small.stop()
  await large.stop()
  return {
    small: { subjects: SUBJECTS_SMALL, ...closed.get(S!.name)! },
    large: { subjects: P.subjectsLarge, ...closed.get(L!.name)! },
    memory: {
      perSubjectSmall: (s1 - s0) / SUBJECTS_SMALL,
      perSubjectLarge: (l1 - l0) / P.subjectsLarge,
      memoryUsageKey: sampleUsage,
      memoryUsageStoreWritten: storeUsage,
      encoding,
      layoutMatches,
      fillSubjectsPerSecond: P.subjectsLarge / (fillLargeMs / 1000),
      usedMemoryLargeMb: l1 / 2 ** 20
    },
    commandsKnownHistory: [cmdSmall, cmdLarge]
  }
}

const f = (n: number): string => n.toLocaleString('en-US')

// ---- load + compile ---------------------------------------------------------------------------

function loadCompile (n: number): Results['loadCompile'] {
  const dir = join(work, `policies-${n}`)
  const files = writePolicyFolder(dir, n)
  const loadChild = script('load-child')
  const outText = execFileSync(process.execPath, [...loadChild.execArgv, loadChild.file, dir, '2'], { cwd: root }).toString()
  const parsed = JSON.parse(outText.trim().split('\n').pop()!) as Omit<Results['loadCompile'], 'files'>
  return { ...parsed, files }
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})

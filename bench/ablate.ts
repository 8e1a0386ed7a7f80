/**
 * What each part of the /decide wiring costs, measured by taking it away (no src/ change):
 * the bare baseline, /decide memory as src/server.ts wires it, and variants without the
 * decision log line, with a synchronous log, without under-pressure, metrics or audit,
 * and with all of those off. Interleaved closed-loop rounds; server CPU per request.
 *   npx tsx bench/ablate.ts [--seconds 6] [--rounds 3]
 * Writes bench/.tmp/ablation.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadPolicySet } from '../src/policy/load.js'
import { openGeoLookup } from '../src/signals/geo.js'
import { createMemoryHistoryStore } from '../src/signals/memory-history.js'
import { toRequests } from './lib/load.js'
import { buildPipeline } from './lib/pipeline.js'
import { closedLoop, startServer, warm } from './lib/servers.js'
import { makeMix } from './lib/workload.js'
import type { Variant } from './server.js'
import { benchDir, root } from './lib/paths.js'

const here = benchDir
const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] ?? fallback : fallback }
const seconds = Number(arg('seconds', '6'))
const rounds = Number(arg('rounds', '3'))
const P = { connections: 50, warmupS: 2, runS: seconds * rounds, rounds }

const nowS = Math.floor(Date.now() / 1000)
const mix = makeMix({ count: 5000, seed: 42, nowS, population: 200, variety: 'mixed' })
const work = mkdtempSync(join(tmpdir(), 'stepup-ablate-'))
const set = (await loadPolicySet(join(root, 'policies'))).set
const geo = await openGeoLookup({})
const pipe = buildPipeline(set, geo, createMemoryHistoryStore({ maxSubjects: 100_000 }))
for (const b of mix) await pipe.handle(b)
const responses = []
for (const b of mix) responses.push(JSON.parse(await pipe.handle(b)) as unknown)
const responsesFile = join(work, 'responses.json')
writeFileSync(responsesFile, JSON.stringify(responses))
geo.close()

const variants: Array<[string, Variant]> = [
  ['/decide memory (as src/server.ts wires it)', {}],
  ['  without the decision log line (level warn)', { logLevel: 'warn' }],
  ['  decision log written synchronously (one write per line)', { syncLog: true }],
  ['  without under-pressure', { maxEventLoopDelayMs: 0 }],
  ['  without metrics', { noMetrics: true }],
  ['  without audit', { noAudit: true }],
  ['  without log line, under-pressure, metrics, audit', { logLevel: 'warn', maxEventLoopDelayMs: 0, noMetrics: true, noAudit: true }]
]
const servers = await Promise.all([
  startServer('baseline A (bare)', { kind: 'bare', responsesFile }),
  ...variants.map(([name, variant]) => startServer(name, { kind: 'decide', history: 'memory', audit: 'memory', policiesDir: join(root, 'policies'), variant }))
])
const requests = toRequests(mix, '/decide')
for (const s of servers) await warm(s, requests, P)
const runs = await closedLoop(servers.map(server => ({ server, requests })), P)
for (const s of servers) await s.close()
rmSync(work, { recursive: true, force: true })

const full = runs.get(variants[0]![0])!
const bare = runs.get('baseline A (bare)')!
const L = [
  `# Ablation: what the /decide wiring costs (${new Date().toISOString()})`, '',
  `${rounds} interleaved rounds of ${seconds} s, 50 connections, the benchmark's request mix, memory store.`, '',
  '| server | req/s | ÷ bare | server CPU µs/req | of which kernel | CPU saved vs full /decide, µs/req |', '|---|---:|---:|---:|---:|---:|'
]
for (const s of servers) {
  const r = runs.get(s.name)!
  L.push(`| ${s.name} | ${r.rps.toFixed(0)} | ${(r.rps / bare.rps).toFixed(2)} | ${r.cpuUsPerRequest.toFixed(1)} | ${r.sysUsPerRequest.toFixed(1)} | ${(full.cpuUsPerRequest - r.cpuUsPerRequest).toFixed(1)} |`)
}
mkdirSync(join(here, '.tmp'), { recursive: true })
writeFileSync(join(here, '.tmp', 'ablation.md'), L.join('\n') + '\n')
console.log(L.join('\n'))

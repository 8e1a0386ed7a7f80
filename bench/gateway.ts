/**
 * `npm run bench:gateway`: what verified tokens and the gateway endpoints cost, as ratios
 * measured in one run (so machine noise mostly cancels):
 *  1. POST /decide with a `token` (verification cache warm) against the same decision with `claims`;
 *  2. cold verification cost per algorithm (ES256, RS256, EdDSA), keys already fetched;
 *  3. GET /authz/auth-request against POST /decide for the same decision;
 *  4. through a real nginx: nginx -> upstream alone against nginx -> stepup-pdp -> upstream.
 * 1 and 3 run in process (Fastify inject, interleaved rounds); 4 runs the service in its own
 * process with autocannon. Writes bench/GATEWAY.md.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { buildApp } from '../src/app.js'
import { loadPolicySet, PolicyHolder } from '../src/policy/load.js'
import { openGeoLookup } from '../src/signals/geo.js'
import { createMemoryHistoryStore } from '../src/signals/memory-history.js'
import { TokenVerifier } from '../src/tokens/verify.js'
import { policyFolder } from '../test/tokens/app.js'
import { makeKey, TestIssuer } from '../test/tokens/issuer-server.js'
import { startNginx, startUpstream } from '../test/gateway/nginx.js'
import { load } from './lib/load.js'
import { benchDir } from './lib/paths.js'

const quick = process.argv.includes('--quick')
const ROUND_MS = quick ? 300 : 1500
const ROUNDS = quick ? 2 : 4
const lines: string[] = []
const out = (s: string): void => { console.log(s); lines.push(s) }

const issuer = await new TestIssuer().start()
issuer.keys = [await makeKey('ES256', 'es'), await makeKey('RS256', 'rs'), await makeKey('EdDSA', 'ed')]
const folder = policyFolder({
  'p.yaml': `
issuers:
  - issuer: ${issuer.url}
    audience: [https://api.example.com]
routes:
  - match: { methods: [POST], path: /v1/payouts/:id }
    action: payments.payout
    context: { payoutId: params.id }
policies:
  - id: payouts
    actions: [payments.payout]
    require: { aal: 2, maxAge: 15m }
`
})
const nowS = Math.floor(Date.now() / 1000)
const claims = { sub: 'u1', amr: ['pwd', 'otp'], auth_time: nowS - 60 }
const token = await issuer.sign({ ...claims, exp: nowS + 3600 })

// ---- 1 and 3: in process -------------------------------------------------------------------
const { set } = await loadPolicySet(folder)
const geo = await openGeoLookup({})
const app = await buildApp({ apiKeys: [], adminApiKeys: [], trustedProxies: ['127.0.0.0/8'] }, {
  policies: new PolicyHolder(set), geo, history: createMemoryHistoryStore({ maxSubjects: 10_000 }), logger: pino({ level: 'silent' }), maxEventLoopDelayMs: 0
})
await app.ready()
// With issuers configured raw claims are refused: the claims baseline runs on a set without issuers.
const { set: plainSet } = await loadPolicySet(policyFolder({ 'p.yaml': 'policies:\n  - id: payouts\n    actions: [payments.payout]\n    require: { aal: 2, maxAge: 15m }\n' }))
const plain = await buildApp({ apiKeys: [], adminApiKeys: [] }, { policies: new PolicyHolder(plainSet), geo, history: createMemoryHistoryStore({ maxSubjects: 10_000 }), logger: pino({ level: 'silent' }), maxEventLoopDelayMs: 0 })
await plain.ready()

type Case = () => Promise<{ statusCode: number }>
const cases: Record<string, Case> = {
  'decide-claims': () => plain.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.payout', claims } }),
  'decide-token': () => app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.payout', token } }),
  'auth-request': () => app.inject({ method: 'GET', url: '/authz/auth-request', headers: { 'x-original-method': 'POST', 'x-original-url': 'https://api.example.com/v1/payouts/42', authorization: `Bearer ${token}` } })
}
for (const [name, run] of Object.entries(cases)) {
  const res = await run()
  if (res.statusCode !== 200) throw new Error(`${name}: HTTP ${res.statusCode}`)
}
const rate: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map(k => [k, []]))
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(cases)) {
    const until = performance.now() + ROUND_MS
    let n = 0
    const started = performance.now()
    while (performance.now() < until) { await run(); n++ }
    rate[name]!.push(n / ((performance.now() - started) / 1000))
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const r = Object.fromEntries(Object.entries(rate).map(([k, v]) => [k, median(v)])) as Record<string, number>

out('# Gateway and token benchmark')
out('')
out(`${new Date().toISOString()}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map(l => l.toFixed(2)).join(' ')}; ${quick ? 'quick' : `${ROUNDS} interleaved rounds of ${ROUND_MS} ms`}, medians. Command: \`npm run bench:gateway\`.`)
out('')
out('## In process (Fastify inject: routing, validation, verification, decision, serialization)')
out('')
out('| case | requests/s | ratio | goal |')
out('|---|---:|---:|---|')
out(`| POST /decide with claims | ${r['decide-claims']!.toFixed(0)} | 1.00 | |`)
out(`| POST /decide with token (cache warm) | ${r['decide-token']!.toFixed(0)} | ${(r['decide-token']! / r['decide-claims']!).toFixed(2)} | ≥ 0.90 |`)
out(`| GET /authz/auth-request, same decision | ${r['auth-request']!.toFixed(0)} | ${(r['auth-request']! / r['decide-claims']!).toFixed(2)} | ≥ 0.90 |`)

// ---- 2: cold verification per algorithm -----------------------------------------------------
const verifier = new TokenVerifier({ now: Date.now, cacheSize: 10 })
const issuers = (await import('../src/policy/gateway-config.js')).gatewayConfigOf(set).issuers
await verifier.verify(token, issuers, 30)
out('')
out('## Cold verification (signature and claims; keys already fetched; cache missed)')
out('')
out('| algorithm | µs per token | tokens/s on one core |')
out('|---|---:|---:|')
const N = quick ? 200 : 2000
const WARM = 100
const signed = new Map<string, string[]>()
for (const key of issuer.keys) {
  const tokens = await Promise.all(Array.from({ length: N + WARM }, (_, i) => issuer.sign({ ...claims, jti: `${key.kid}-${i}`, exp: nowS + 3600 }, { key })))
  signed.set(key.kid, tokens)
  for (const t of tokens.slice(0, WARM)) await verifier.verify(t, issuers, 30) // warm every code path first
}
for (const key of issuer.keys) {
  const started = performance.now()
  for (const t of signed.get(key.kid)!.slice(WARM)) {
    const v = await verifier.verify(t, issuers, 30)
    if (!v.ok) throw new Error(`${key.alg}: ${v.reason}`)
  }
  const us = (performance.now() - started) * 1000 / N
  out(`| ${key.alg} | ${us.toFixed(0)} | ${(1e6 / us).toFixed(0)} |`)
}
await app.close()
await plain.close()

// ---- 4: through nginx ------------------------------------------------------------------------
const child: ChildProcess = fork(join(benchDir, 'gateway-server.ts'), [folder], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
const pdpPort = await new Promise<number>((resolve, reject) => {
  child.stdout!.on('data', (d: Buffer) => { const m = /port=(\d+)/.exec(d.toString()); if (m) resolve(Number(m[1])) })
  child.once('exit', code => reject(new Error(`the service exited: ${code}`)))
})
const upstream = await startUpstream()
const stopChild = (): void => { if (child.exitCode === null) child.kill('SIGTERM') }
process.once('exit', stopChild)
const nginx = await startNginx({ pdp: pdpPort, upstream: upstream.port, key: 'unused-key-0123456789', extraLocations: 'location /direct/ { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://api; }' })
const seconds = quick ? 2 : 8
const body = ''
const guarded = { method: 'POST' as const, path: '/v1/payouts/42', headers: { authorization: `Bearer ${token}` }, body }
const direct = { method: 'POST' as const, path: '/direct/v1/payouts/42', headers: {}, body }
const url = `http://127.0.0.1:${nginx.port}`
try {
  await load({ url, requests: [guarded], connections: 20, seconds: 1 })
  const results: Record<string, Awaited<ReturnType<typeof load>>[]> = { direct: [], guarded: [] }
  for (let round = 0; round < (quick ? 1 : 2); round++) {
    results.direct!.push(await load({ url, requests: [direct], connections: 20, seconds }))
    results.guarded!.push(await load({ url, requests: [guarded], connections: 20, seconds }))
  }
  // A connection cut as a run stops may count as one error; anything more means a broken setup.
  for (const run of [...results.direct!, ...results.guarded!]) if (run.non2xx > 0 || run.errors > run.requests / 1000) throw new Error(`nginx run: ${run.non2xx} non-2xx, ${run.errors} errors`)
  const best = (xs: Awaited<ReturnType<typeof load>>[]) => ({ rps: median(xs.map(x => x.rps)), p50: median(xs.map(x => x.p50)), p99: median(xs.map(x => x.p99)) })
  const d = best(results.direct!)
  const g = best(results.guarded!)
  out('')
  out(`## Through nginx (autocannon, 20 connections, ${seconds} s per run; nginx, upstream, stepup-pdp and the load generator share this machine)`)
  out('')
  out('| path | requests/s | p50 ms | p99 ms |')
  out('|---|---:|---:|---:|')
  out(`| nginx -> upstream | ${d.rps.toFixed(0)} | ${d.p50.toFixed(2)} | ${d.p99.toFixed(2)} |`)
  out(`| nginx -> stepup-pdp -> upstream | ${g.rps.toFixed(0)} | ${g.p50.toFixed(2)} | ${g.p99.toFixed(2)} |`)
  const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`
  out(`| ratio / added | ${(g.rps / d.rps).toFixed(2)} | ${signed(g.p50 - d.p50)} | ${signed(g.p99 - d.p99)} |`)
} finally {
  await nginx.stop()
  upstream.server.close()
  stopChild()
}
await issuer.stop()
geo.close()
writeFileSync(join(benchDir, quick ? '.tmp/GATEWAY.md' : 'GATEWAY.md'), lines.join('\n') + '\n')
process.exit(0)

// Operations (docs/operations.md): hot reload, SIGHUP, admin routes, audit trail and events, metrics,
// and on a real server process SIGHUP and SIGTERM (idle keep-alive connections end cleanly, the
// request in flight is answered).
import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import { createPolicyReloader } from '../../src/policy/reloader.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { TS_CHILD_ARGS } from '../helpers/child.js'

const ADMIN = 'admin-key-0123456789'
const API = 'api-key-0123456789ab'
const geo = await openGeoLookup({})

const POLICY = (aal: number): string => `policies:\n  - id: guard\n    actions: [payments.payout]\n    require: { aal: ${aal}, maxAge: 15m }\n`

async function setup (t: Test, options: { watch?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-ops-'))
  writeFileSync(join(dir, 'p.yaml'), POLICY(2))
  const holder = new PolicyHolder((await loadPolicySet(dir)).set)
  const logger = pino({ level: 'silent' })
  const reloader = createPolicyReloader({ dir, holder, logger, debounceMs: 50 })
  if (options.watch) reloader.watch()
  const app = await buildApp({ apiKeys: [API], adminApiKeys: [ADMIN] }, {
    policies: holder, geo, history: createMemoryHistoryStore({ maxSubjects: 100 }), logger, reloader,
    maxEventLoopDelayMs: 0 // no load shedding (overload.test.ts has it): a burst of 200 on a busy machine is not an overload here
  })
  t.teardown(async () => { reloader.close(); await app.close() })
  const decide = async (amr: string[] = ['pwd', 'otp']) => app.inject({
    method: 'POST', url: '/decide', headers: { authorization: `Bearer ${API}` },
    payload: { action: 'payments.payout', subject: { id: 'u1' }, claims: { amr, auth_time: Math.floor(Date.now() / 1000) } }
  })
  const admin = (method: 'GET' | 'POST', url: string) => app.inject({ method, url, headers: { authorization: `Bearer ${ADMIN}` } })
  return { dir, holder, app, decide, admin, reloader }
}

const waitUntil = async (check: () => Promise<boolean>, ms: number): Promise<boolean> => {
  const end = Date.now() + ms
  while (Date.now() < end) { if (await check()) return true; await new Promise(r => setTimeout(r, 25)) }
  return false
}

t.test('a valid edit is served soon after the file change', async t => {
  const { dir, decide } = await setup(t, { watch: true })
  t.equal((await decide()).json().decision, 'allow', 'AAL 2 meets the first set')
  writeFileSync(join(dir, 'p.yaml'), POLICY(3))
  // Generous: the first load of a test process starts the loading worker from TypeScript sources.
  t.ok(await waitUntil(async () => (await decide()).json().decision === 'step_up', 15_000), 'the stricter set serves')
})

t.test('an invalid edit is refused: the old set keeps answering, every in-flight decision succeeds, the error shows', async t => {
  const { dir, decide, admin, reloader } = await setup(t)
  writeFileSync(join(dir, 'p.yaml'), 'policies:\n  - id: guard\n    actions: [payments.payout]\n    require: { aal: 9 }\n')
  const inFlight = Array.from({ length: 200 }, () => decide())
  const result = await reloader.reload('test')
  const answers = await Promise.all(inFlight)
  t.equal(result.ok, false)
  t.ok(answers.every(r => r.statusCode === 200 && r.json().decision === 'allow'), 'all 200 decisions answered by the good set')
  t.equal((await decide()).json().decision, 'allow')
  const ready = await admin('GET', '/readyz')
  t.equal(ready.statusCode, 200, 'still ready: a good set serves')
  t.match(ready.json(), { status: 'degraded', policies: { lastError: [/p\.yaml:4:\d+ policies\[0\]\.require\.aal: must be one of 1, 2, 3/] } })
  const listed = await admin('GET', '/policies')
  t.match(listed.json(), { count: 1, lastError: [/require\.aal/], policies: [{ id: 'guard', require: { aal: 2 } }] })
  const refused = await admin('POST', '/policies/reload')
  t.equal(refused.statusCode, 422)
  t.match(refused.json(), { error: 'policies_invalid', problems: [/require\.aal/] })
  // Fixed again: the error clears.
  writeFileSync(join(dir, 'p.yaml'), POLICY(3))
  const fixed = await admin('POST', '/policies/reload')
  t.match(fixed.json(), { ok: true, changed: true, policies: 1 })
  t.equal((await admin('GET', '/policies')).json().lastError, null)
  t.equal((await decide()).json().decision, 'step_up')
})

t.test('many decisions in flight during a good swap all succeed', async t => {
  const { dir, decide, reloader } = await setup(t)
  writeFileSync(join(dir, 'p.yaml'), POLICY(3))
  const inFlight = Array.from({ length: 300 }, (_, i) => (i === 150 ? reloader.reload('swap').then(() => decide()) : decide()))
  const answers = await Promise.all(inFlight)
  t.ok(answers.every(r => r.statusCode === 200 && ['allow', 'step_up'].includes(r.json().decision)))
})

t.test('admin routes refuse requests without the admin key, and the API key is not an admin key', async t => {
  const { app } = await setup(t)
  for (const url of ['/policies', '/audit']) {
    t.equal((await app.inject({ url })).statusCode, 401, `${url} without a key`)
    t.equal((await app.inject({ url, headers: { authorization: `Bearer ${API}` } })).statusCode, 401, `${url} with the API key`)
  }
  t.equal((await app.inject({ method: 'POST', url: '/policies/reload' })).statusCode, 401)
})

t.test('admin routes do not exist when ADMIN_API_KEYS is unset', async t => {
  const app = await buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new PolicyHolder((await loadPolicySet('policies')).set), geo, history: createMemoryHistoryStore({ maxSubjects: 1 })
  })
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/policies' })).statusCode, 404)
})

t.test('a step-up and its completion show as a linked pair in /audit; unknown and repeated outcomes are refused', async t => {
  const { app, decide, admin } = await setup(t)
  const stepUp = (await decide(['pwd'])).json()
  t.equal(stepUp.decision, 'step_up')
  const report = (decisionId: string, key = API) => app.inject({
    method: 'POST', url: '/events', headers: { authorization: `Bearer ${key}` },
    payload: { decisionId, event: 'auth.step_up_completed' }
  })
  t.equal((await report(stepUp.decisionId, 'wrong-key-000000000000')).statusCode, 401)
  const ok = await report(stepUp.decisionId)
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { recorded: true, decisionId: stepUp.decisionId, event: 'auth.step_up_completed' })
  t.match((await report(stepUp.decisionId)).json(), { error: 'conflict', message: /decisionId/ })
  const unknown = await report('01930000-0000-7000-8000-000000000000')
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json(), { error: 'not_found', message: /decisionId/ })
  const allowed = (await decide(['pwd', 'otp'])).json()
  t.equal((await report(allowed.decisionId)).statusCode, 404, 'an allow has no step-up to complete')

  const pair = (await admin('GET', `/audit?decisionId=${stepUp.decisionId}`)).json().entries
  t.match(pair, [
    { event: 'auth.step_up_completed', decisionId: stepUp.decisionId, subject: 'u1', action: 'payments.payout' },
    { event: 'auth.step_up_initiated', decisionId: stepUp.decisionId, subject: 'u1', action: 'payments.payout', decision: 'step_up', policies: ['guard'] }
  ])
  const initiated = (await admin('GET', '/audit?event=auth.step_up_initiated&subject=u1')).json().entries
  t.equal(initiated.length, 1)
  t.equal((await admin('GET', '/audit?event=auth.step_up_skipped&action=payments.payout')).json().entries.length, 1, 'the satisfied decision')
  t.equal((await admin('GET', `/audit?from=${Date.now() + 60_000}`)).json().entries.length, 0, 'time filter')
  const bad = await admin('GET', '/audit?from=yesterday')
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { error: 'invalid_request', message: /from/ })
})

t.test('metrics move as decisions are made', async t => {
  const { app, decide } = await setup(t)
  await decide(['pwd'])
  await decide(['pwd', 'otp'])
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200, 'no key needed')
  t.match(res.headers['content-type'], /text\/plain/)
  t.match(res.body, /stepup_decisions_total\{decision="step_up",event="auth.step_up_initiated"\} 1/)
  t.match(res.body, /stepup_decisions_total\{decision="allow",event="auth.step_up_skipped"\} 1/)
  t.match(res.body, /stepup_policy_hits_total\{policy="guard",outcome="step_up"\} 1/)
  t.match(res.body, /stepup_decision_duration_seconds_count 2/)
  t.match(res.body, /stepup_policies_loaded 1/)
})

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const s = createServer()
  s.listen(0, '127.0.0.1', () => { const a = s.address(); s.close(() => resolve((a as { port: number }).port)) })
  s.on('error', reject)
})

/** An idle keep-alive connection that has served one request; `closed` tells how it ended. */
const idleKeepAlive = (port: number): Promise<{ socket: Socket, closed: Promise<{ error?: string, fin: boolean }> }> => new Promise(resolve => {
  const socket = connect(port, '127.0.0.1')
  let fin = false
  let error: string | undefined
  let seen = ''
  socket.on('end', () => { fin = true })
  socket.on('error', e => { error = (e as NodeJS.ErrnoException).code ?? e.message })
  const closed = new Promise<{ error?: string, fin: boolean }>(r => socket.on('close', () => r({ fin, ...(error ? { error } : {}) })))
  socket.on('data', d => {
    seen += String(d)
    if (seen.includes('\r\n\r\n') && seen.includes('"ok"')) resolve({ socket, closed })
  })
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
})

/** A POST /decide whose body comes `delayMs` after its headers; resolves with what was received when the server closes. */
const slowDecide = (port: number, delayMs: number): Promise<{ data: string, error?: string }> => new Promise(resolve => {
  const body = JSON.stringify({ action: 'profile.read', subject: { id: 'u' } })
  const socket = connect(port, '127.0.0.1')
  let data = ''
  let error: string | undefined
  socket.on('data', d => { data += String(d) })
  socket.on('error', e => { error = (e as NodeJS.ErrnoException).code ?? e.message })
  socket.on('close', () => resolve({ data, ...(error ? { error } : {}) }))
  socket.on('connect', () => {
    socket.write(`POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`)
    setTimeout(() => socket.write(body), delayMs)
  })
})

t.test('SIGHUP reloads a running server; SIGTERM closes idle keep-alive connections cleanly, finishes the request in flight and exits 0', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-sighup-'))
  cpSync('policies', dir, { recursive: true })
  writeFileSync(join(dir, 'extra.yaml'), 'policies:\n  - { id: extra-one, actions: [x.y] }\n')
  const port = await freePort()
  const child = spawn(process.execPath, [...TS_CHILD_ARGS, 'src/server.ts'], {
    env: { ...process.env, PORT: String(port), POLICIES_DIR: dir, ADMIN_API_KEYS: ADMIN, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', d => { output += String(d) })
  child.stderr.on('data', d => { output += String(d) })
  t.teardown(() => { child.kill('SIGKILL') })
  const base = `http://127.0.0.1:${port}`
  const count = async (): Promise<number | undefined> => {
    try {
      const r = await fetch(`${base}/policies`, { headers: { authorization: `Bearer ${ADMIN}` } })
      return r.ok ? ((await r.json()) as { count: number }).count : undefined
    } catch { return undefined }
  }
  t.ok(await waitUntil(async () => (await count()) !== undefined, 20_000), `the server starts\n${output}`)
  const before = (await count())!
  // Change the folder in a way the watcher may also see; SIGHUP must be enough on its own.
  writeFileSync(join(dir, 'extra.yaml'), 'policies:\n  - { id: extra-one, actions: [x.y] }\n  - { id: extra-two, actions: [x.z] }\n')
  child.kill('SIGHUP')
  t.ok(await waitUntil(async () => (await count()) === before + 1, 5000), 'the new policy serves')
  t.equal(child.exitCode, null, 'SIGHUP did not stop the server')

  // Three idle keep-alive connections, each having served one request, and one request in
  // flight at SIGTERM: headers sent, body still to come.
  const idle = await Promise.all([0, 1, 2].map(() => idleKeepAlive(port)))
  const inFlight = slowDecide(port, 300)
  await new Promise(resolve => setTimeout(resolve, 100))
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  child.kill('SIGTERM')
  for (const [i, c] of idle.entries()) {
    const outcome = await c.closed
    t.same(outcome, { fin: true }, `idle connection ${i}: closed with FIN, no error`)
  }
  const answered = await inFlight
  t.match(answered.data, /^HTTP\/1\.1 200/, `the request in flight is answered: ${answered.data.split('\r\n')[0] ?? ''}`)
  t.notOk(answered.error, 'and its connection is not reset')
  t.equal(await exited, 0, `SIGTERM exits 0 after draining\n${output}`)
})

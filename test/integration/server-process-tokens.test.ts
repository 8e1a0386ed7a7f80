// The real server process (src/server.ts): its policy set is loaded in the loading worker at start
// and on every reload, never by the main-thread compile the in-process tests use. A real HTTP
// issuer signs the tokens; everything is asked over HTTP. Guards the gateway sections (issuers:,
// callers:, routes:) crossing the worker with the set: without them no token verifies, raw claims
// are accepted from anyone and every gateway request maps to the fallback action.
import { spawn } from 'node:child_process'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { makeKey, TestIssuer } from '../tokens/issuer-server.js'
import { TS_CHILD_ARGS } from '../helpers/child.js'

const NGINX_KEY = 'nginx-key-0123456789abcdef0123456' // 32 characters after the name
const OPS_KEY = 'ops-key-0123456789abcdef012345678'
const ADMIN_KEY = 'admin-key-0123456789abcdef0123456'

const nowS = (): number => Math.floor(Date.now() / 1000)

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const s = createServer()
  s.listen(0, '127.0.0.1', () => { const a = s.address(); s.close(() => resolve((a as { port: number }).port)) })
  s.on('error', reject)
})

const waitUntil = async (check: () => Promise<boolean>, ms: number): Promise<boolean> => {
  const end = Date.now() + ms
  while (Date.now() < end) { if (await check().catch(() => false)) return true; await new Promise(r => setTimeout(r, 100)) }
  return false
}

// Issuer A serves its keys; issuer B is declared too but is down from the start (its port closed):
// its keys are never had.
const issuer = await new TestIssuer().start()
issuer.keys = [await makeKey('ES256', 'k1')]
const downIssuer = await new TestIssuer().start()
downIssuer.keys = [await makeKey('ES256', 'b1')]
await downIssuer.stop()

const GATEWAY = `
issuers:
  - issuer: ${issuer.url}
    audience: [https://api.example.com]
    tenant: { claim: org_id }
  - issuer: ${downIssuer.url}
    audience: [https://api.example.com]
    tenant: { claim: org_id }
callers:
  - name: nginx
    tenants: [acme]
    explain: true
  - name: ops
    trustClaims: true
routes:
  - match: { methods: [POST], path: /v1/payouts/:id }
    action: payments.payout
    resource: payments
  - match: { methods: [GET], path: /v1/profile }
    action: profile.read
`
const POLICIES = `
policies:
  - id: payouts
    actions: [payments.payout]
    require: { aal: 2, maxAge: 15m }
    message: Confirm the payout.
  - id: no-unrouted-deletes
    actions: [http.delete]
    effect: deny
`
const ADDED = `
  - id: profile-needs-sign-in
    actions: [profile.read]
    require: { aal: 1 }
`

const dir = mkdtempSync(join(tmpdir(), 'stepup-server-tokens-'))
writeFileSync(join(dir, 'gateway.yaml'), GATEWAY)
writeFileSync(join(dir, 'policies.yaml'), POLICIES)

const port = await freePort()
const child = spawn(process.execPath, [...TS_CHILD_ARGS, 'src/server.ts'], {
  env: {
    ...process.env,
    PORT: String(port),
    POLICIES_DIR: dir,
    API_KEYS: `nginx:${NGINX_KEY},ops:${OPS_KEY}`,
    ADMIN_API_KEYS: ADMIN_KEY,
    LOG_LEVEL: 'warn'
  },
  stdio: ['ignore', 'pipe', 'pipe']
})
let output = ''
child.stdout.on('data', d => { output += String(d) })
child.stderr.on('data', d => { output += String(d) })
t.teardown(async () => {
  child.kill('SIGKILL')
  await issuer.stop().catch(() => undefined)
  rmSync(dir, { recursive: true, force: true })
})

const base = `http://127.0.0.1:${port}`
/** The parsed body, untyped like inject's json(). */
type Body = ReturnType<typeof JSON.parse>
interface Answer { status: number, headers: Headers, body: Body }
const call = async (path: string, init: RequestInit): Promise<Answer> => {
  const res = await fetch(base + path, init)
  const text = await res.text()
  let body: Body = text
  try { body = text === '' ? undefined : JSON.parse(text) } catch { /* not JSON: kept as text */ }
  return { status: res.status, headers: res.headers, body }
}
const decide = (body: Record<string, unknown>, key = NGINX_KEY): Promise<Answer> => call('/decide', {
  method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body)
})
const authRequest = (method: string, url: string, token?: string): Promise<Answer> => call('/authz/auth-request', {
  method: 'GET',
  headers: { 'x-stepup-key': NGINX_KEY, 'x-original-method': method, 'x-original-url': url, ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) }
})
const readyz = async (): Promise<{ status: number, revision?: string, count?: number }> => {
  const r = await call('/readyz', { method: 'GET' })
  return { status: r.status, revision: r.body?.policies?.revision, count: r.body?.policies?.count }
}

const sign = (amr: string[], extra: Record<string, unknown> = {}, key = issuer.keys[0]): Promise<string> =>
  issuer.sign({ sub: 'u1', org_id: 'acme', amr, auth_time: nowS() - 60, ...extra }, { key })
/** The same header and payload with a broken signature (a bit of its first and last bytes flipped). */
const tamper = (token: string): string => {
  const [h, p, s] = token.split('.') as [string, string, string]
  const bytes = Buffer.from(s, 'base64url')
  bytes[0]! ^= 0x01
  bytes[bytes.length - 1]! ^= 0x01
  return `${h}.${p}.${bytes.toString('base64url')}`
}

// No assertion before the subtests: tap ends a root test that asserted and then went idle.
if (!(await waitUntil(async () => (await readyz()).status === 200, 30_000))) {
  child.kill('SIGKILL')
  throw new Error(`the server did not become ready\n${output}`)
}
const first = await readyz()

/** (1)-(3), asked of the running process. */
async function tokensAndRoutesHold (t: Test, label: string, expected: { revision: string, count: number }): Promise<void> {
  await t.test(`${label}: a verified token is the session; a tampered one is invalid_token`, async t => {
    t.equal((await readyz()).count, expected.count, 'the policies of the folder serve')
    const strong = await decide({ action: 'payments.payout', token: await sign(['pwd', 'otp']) })
    t.equal(strong.status, 200, JSON.stringify(strong.body))
    t.equal(strong.body.decision, 'allow', 'AAL 2 from the token\'s amr')
    t.equal(strong.body.policyRevision, expected.revision, 'answered by the expected set')
    const weak = await decide({ action: 'payments.payout', token: await sign(['pwd']) })
    t.equal(weak.body.decision, 'step_up', 'AAL 1 from the token\'s amr')
    t.match(weak.body.challenge?.wwwAuthenticate, /insufficient_user_authentication/)
    const old = await decide({ action: 'payments.payout', token: await issuer.sign({ sub: 'u1', org_id: 'acme', amr: ['pwd', 'otp'], auth_time: nowS() - 3600 }) })
    t.equal(old.body.decision, 'step_up', 'auth_time older than maxAge')

    const tampered = await decide({ action: 'payments.payout', token: tamper(await sign(['hwk', 'pin'])) })
    t.equal(tampered.status, 200)
    t.equal(tampered.body.decision, 'deny')
    t.equal(tampered.body.challenge?.status, 401)
    t.match(tampered.body.challenge?.wwwAuthenticate, /^Bearer error="invalid_token"/)
    t.match(tampered.body.reasons?.[0]?.detail, /^signature:/)

    const outside = await decide({ action: 'payments.payout', token: await sign(['pwd', 'otp'], { org_id: 'globex' }) })
    t.equal(outside.status, 403, 'the callers: scope of nginx (tenants: [acme]) applies')
    t.equal(outside.body.error, 'caller_scope')
  })

  await t.test(`${label}: raw claims are refused from a caller without trustClaims`, async t => {
    const claims = { sub: 'u1', amr: ['hwk', 'pin'], auth_time: nowS() }
    const refused = await decide({ action: 'payments.payout', subject: { id: 'u1' }, claims })
    t.equal(refused.status, 400)
    t.equal(refused.body.error, 'claims_not_accepted')
    const trusted = await decide({ action: 'payments.payout', subject: { id: 'u1' }, claims }, OPS_KEY)
    t.equal(trusted.status, 200, 'the ops caller is trusted with claims')
    t.equal(trusted.body.decision, 'allow')
  })

  await t.test(`${label}: /authz/auth-request maps the original request through routes:`, async t => {
    const url = 'https://api.example.com/v1/payouts/42'
    const allowed = await authRequest('POST', url, await sign(['pwd', 'otp']))
    t.equal(allowed.status, 200, JSON.stringify(allowed.body))
    t.equal(allowed.headers.get('x-stepup-decision'), 'allow')
    t.equal(allowed.headers.get('x-stepup-subject'), 'u1')
    t.equal(allowed.headers.get('x-stepup-aal'), '2')
    const weak = await authRequest('POST', url, await sign(['pwd']))
    t.equal(weak.status, 401, 'routed to payments.payout, which needs AAL 2')
    t.equal(weak.headers.get('x-stepup-decision'), 'step_up')
    t.match(weak.headers.get('www-authenticate'), /error="insufficient_user_authentication"/)
    const anonymous = await authRequest('POST', url)
    t.equal(anonymous.status, 401)
    t.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="stepup-pdp"')
    const tampered = await authRequest('POST', url, tamper(await sign(['pwd', 'otp'])))
    t.equal(tampered.status, 401)
    t.match(tampered.headers.get('www-authenticate'), /^Bearer error="invalid_token"/)
    t.equal(tampered.body.error, 'invalid_token')
    // An unrouted DELETE falls back to http.delete, which a policy denies.
    const deleted = await authRequest('DELETE', 'https://api.example.com/v1/anything', await sign(['hwk', 'pin']))
    t.equal(deleted.status, 403)
    t.equal(deleted.headers.get('x-stepup-decision'), 'deny')
  })
}

await tokensAndRoutesHold(t, 'at start', { revision: first.revision!, count: 2 })

await t.test('an edited folder (a policy added, saved by rename-over) reloads in the worker and keeps the gateway sections', async t => {
  const staged = join(dir, '.policies.yaml.tmp')
  writeFileSync(staged, POLICIES + ADDED)
  renameSync(staged, join(dir, 'policies.yaml'))
  t.ok(await waitUntil(async () => (await readyz()).revision !== first.revision, 20_000), `the new set serves\n${output}`)
  const after = await readyz()
  t.equal(after.count, 3, 'the added policy is in')
  // The added policy routes GET /v1/profile to profile.read, which now needs a session.
  const anonymous = await authRequest('GET', 'https://api.example.com/v1/profile')
  t.equal(anonymous.status, 401, 'the new policy applies to the routed action')
  t.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="stepup-pdp"')
  const signedIn = await authRequest('GET', 'https://api.example.com/v1/profile', await sign(['pwd']))
  t.equal(signedIn.status, 200)
  await tokensAndRoutesHold(t, 'after the reload', { revision: after.revision!, count: 3 })

  // An edit of the gateway sections alone is a new set too: nginx may now ask about globex.
  writeFileSync(staged, GATEWAY.replace('tenants: [acme]', 'tenants: [acme, globex]'))
  renameSync(staged, join(dir, 'gateway.yaml'))
  t.ok(await waitUntil(async () => (await readyz()).revision !== after.revision, 20_000), `the edited callers: serve\n${output}`)
  const globex = await decide({ action: 'payments.payout', token: await sign(['pwd', 'otp'], { org_id: 'globex' }) })
  t.equal(globex.status, 200, JSON.stringify(globex.body))
  t.equal(globex.body.decision, 'allow')
  t.equal((await readyz()).count, 3)
})

await t.test('issuer keys out of reach never allow', async t => {
  await issuer.stop()
  const stranger = await makeKey('ES256', 'unseen-kid')
  // Issuer A is stopped. The keys the PDP already has keep serving; a kid it has never seen cannot
  // be fetched, and with keys of that issuer in hand it is an unknown kid: invalid_token (401).
  const known = await decide({ action: 'payments.payout', token: await sign(['pwd', 'otp']) })
  t.equal(known.body.decision, 'allow', 'a token signed with a key already fetched still verifies')
  const unseen = await decide({ action: 'payments.payout', token: await sign(['hwk', 'pin'], {}, stranger) })
  t.equal(unseen.status, 200)
  t.equal(unseen.body.decision, 'deny')
  t.not(unseen.body.challenge?.status, undefined)
  t.match(unseen.body.challenge?.wwwAuthenticate, /^Bearer error="invalid_token"/)
  t.match(unseen.body.reasons?.[0]?.detail, /^kid:/)
  const gatewayUnseen = await authRequest('POST', 'https://api.example.com/v1/payouts/42', await sign(['hwk', 'pin'], {}, stranger))
  t.equal(gatewayUnseen.status, 401)
  t.not(gatewayUnseen.headers.get('x-stepup-decision'), 'allow')

  // Issuer B was down from the start: no key of it was ever had, so every token of it is 503.
  const fromDown = await downIssuer.sign({ sub: 'u1', org_id: 'acme', amr: ['hwk', 'pin'], auth_time: nowS() - 60, iss: downIssuer.url })
  const down = await decide({ action: 'payments.payout', token: fromDown })
  t.equal(down.status, 200)
  t.equal(down.body.decision, 'deny')
  t.equal(down.body.challenge?.status, 503)
  t.equal(down.body.reasons?.[0]?.detail, 'issuer keys unavailable')
  const gatewayDown = await authRequest('POST', 'https://api.example.com/v1/payouts/42', fromDown)
  t.equal(gatewayDown.status, 503)
  t.equal(gatewayDown.body.error, 'temporarily_unavailable')
  t.not(gatewayDown.headers.get('x-stepup-decision'), 'allow')
  t.equal(child.exitCode, null, 'the server is still running')
})

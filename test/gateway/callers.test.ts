// Named API keys and their `callers:` scopes: tenants, applications, raw claims, and who may
// read the figures of reasons (a user's places and devices).
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from '../tokens/app.js'
import { issuerPolicies, makeKey, TestIssuer } from '../tokens/issuer-server.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const issuer = await new TestIssuer().start()
t.teardown(() => issuer.stop())
issuer.keys = [await makeKey('ES256', 'k1')]

const KEYS = { globex: 'globex-key-0123456789abcdef', auditor: 'auditor-key-0123456789abcd', admin: 'admin-key-0123456789abcdef', web: 'web-key-0123456789abcdef', ops: 'ops-key-0123456789abcdef', legacy: 'legacy-key-0123456789abcdef', trusted: 'trusted-key-0123456789abcd' }
const callers = `
callers:
  - name: web
    tenants: [acme]
    applications: [billing-web]
  - name: ops
    explain: true
  - name: trusted
    trustClaims: true
  - name: globex
    tenants: [globex]
  - name: auditor
    tenants: [globex]
routes:
  - match: { path: /account }
    action: account.email.change
policies:
  - id: new-device
    actions: [account.**]
    when: [newDevice: {}]
    require: { aal: 2 }
`
const { app, dir } = await tokenApp({ geo, files: { 'p.yaml': issuerPolicies(issuer.url), 'callers.yaml': callers }, config: { adminApiKeys: [`auditor:${KEYS.auditor}`, KEYS.admin], apiKeys: [`globex:${KEYS.globex}`, `web:${KEYS.web}`, `ops:${KEYS.ops}`, KEYS.legacy, `trusted:${KEYS.trusted}`] } })
t.teardown(async () => { await app.close(); cleanup(dir) })

const nowS = (): number => Math.floor(Date.now() / 1000)
const token = (org: string) => issuer.sign({ sub: 'u1', org_id: org, amr: ['pwd'], auth_time: nowS() - 60 })
const post = (key: string, body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/decide', payload: body, headers: { authorization: `Bearer ${key}` } })

t.test('a caller asking about a tenant or application outside its scope gets 403 caller_scope', async t => {
  const inside = await post(KEYS.web, { action: 'account.email.change', application: 'billing-web', token: await token('acme') })
  t.equal(inside.statusCode, 200, inside.body)
  const otherTenant = await post(KEYS.web, { action: 'account.email.change', application: 'billing-web', token: await token('globex') })
  t.equal(otherTenant.statusCode, 403)
  t.same(Object.keys(otherTenant.json()).sort(), ['error', 'message'])
  t.equal(otherTenant.json().error, 'caller_scope')
  t.match(otherTenant.json().message, /^tenant:/)
  const otherApp = await post(KEYS.web, { action: 'account.email.change', application: 'admin-console', token: await token('acme') })
  t.equal(otherApp.json().error, 'caller_scope')
  t.match(otherApp.json().message, /^application:/)
  const noApp = await post(KEYS.web, { action: 'account.email.change', token: await token('acme') })
  t.equal(noApp.statusCode, 403)
})

t.test('raw claims: refused unless the caller is trusted with them', async t => {
  const claims = { sub: 'u1', amr: ['hwk', 'pin'], auth_time: nowS() }
  for (const key of [KEYS.web, KEYS.ops, KEYS.legacy]) {
    const res = await post(key, { action: 'account.email.change', tenant: 'acme', application: 'billing-web', claims })
    t.equal(res.statusCode, 400)
    t.equal(res.json().error, 'claims_not_accepted')
    t.match(res.json().message, /^claims:/)
  }
  const trusted = await post(KEYS.trusted, { action: 'account.email.change', claims })
  t.equal(trusted.statusCode, 200)
})

t.test('figures and details of reasons only for callers with explain: true', async t => {
  const body = { action: 'account.email.change', device: { fingerprint: 'laptop-1' } }
  const plain = await post(KEYS.legacy, { ...body, token: await token('acme') })
  t.equal(plain.json().decision, 'step_up')
  t.same(plain.json().reasons, [{ policy: 'new-device', trigger: 'newDevice', outcome: 'step_up' }], 'trigger and outcome only')
  const explained = await post(KEYS.ops, { ...body, token: await token('acme') })
  t.type(explained.json().reasons[0].figures, 'object', 'an explain caller sees figures')
  t.type(explained.json().reasons[0].detail, 'string')
})

t.test('gateway endpoints take the key from X-Stepup-Key and never put figures in bodies', async t => {
  const noKey = await app.inject({ method: 'GET', url: '/authz/forward-auth', headers: { 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/x', authorization: `Bearer ${await token('acme')}` } })
  t.equal(noKey.statusCode, 401)
  const res = await app.inject({ method: 'GET', url: '/authz/forward-auth', headers: { 'x-stepup-key': KEYS.ops, 'x-forwarded-method': 'POST', 'x-forwarded-host': 'api.example.com', 'x-forwarded-uri': '/account', authorization: `Bearer ${await token('acme')}`, 'x-device-fingerprint': 'laptop-9' } })
  t.equal(res.statusCode, 401, res.body)
  t.equal(res.json().error, 'insufficient_user_authentication')
  t.same(Object.keys(res.json()).sort(), ['decisionId', 'error', 'message', 'required'])
  t.notMatch(res.body, /figures|laptop|newDevice/)
})

t.test('/events and /audit are limited to the caller\'s tenants', async t => {
  const stepUp = await post(KEYS.web, { action: 'account.email.change', application: 'billing-web', token: await token('acme') })
  t.equal(stepUp.json().decision, 'step_up')
  const decisionId = stepUp.json().decisionId
  const event = (key: string) => app.inject({ method: 'POST', url: '/events', payload: { decisionId, event: 'auth.step_up_failed' }, headers: { authorization: `Bearer ${key}` } })
  const outside = await event(KEYS.globex)
  t.equal(outside.statusCode, 403)
  t.equal(outside.json().error, 'caller_scope')
  t.equal((await event(KEYS.web)).statusCode, 200, 'the tenant\'s own caller records it')

  const audit = async (key: string) => (await app.inject({ method: 'GET', url: '/audit?limit=50', headers: { authorization: `Bearer ${key}` } })).json().entries as Array<{ tenant?: string }>
  const all = await audit(KEYS.admin)
  t.ok(all.some(e => e.tenant === 'acme'), 'an unscoped admin key sees acme')
  const scoped = await audit(KEYS.auditor)
  t.same(scoped.filter(e => e.tenant !== 'globex'), [], 'a globex-scoped admin key sees only globex')
})

// AuthZEN Authorization API 1.0: evaluation, evaluations with the three semantics, metadata.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from '../tokens/app.js'
import { makeKey, TestIssuer } from '../tokens/issuer-server.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const issuer = await new TestIssuer().start()
t.teardown(() => issuer.stop())
issuer.keys = [await makeKey('ES256', 'k1')]

const KEY = 'pep-key-0123456789abcdef'
const { app, dir } = await tokenApp({
  geo,
  config: { apiKeys: [`pep:${KEY}`] },
  files: {
    'p.yaml': `
issuers:
  - issuer: ${issuer.url}
    audience: [https://api.example.com]
callers:
  - name: pep
    trustClaims: true
policies:
  - id: payouts
    actions: [payments.payout]
    require: { aal: 2, maxAge: 10m }
    message: Confirm the payout.
  - id: no-deletes
    actions: [records.delete]
    effect: deny
    message: Records are never deleted.
`
  }
})
t.teardown(async () => { await app.close(); cleanup(dir) })

const nowS = (): number => Math.floor(Date.now() / 1000)
const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload: payload as Record<string, unknown>, headers: { authorization: `Bearer ${KEY}`, ...headers } })
const user = async (amr: string[]) => ({ type: 'user', id: 'u1', properties: { token: await issuer.sign({ sub: 'u1', amr, auth_time: nowS() - 5 }) } })

t.test('evaluation: permit, step-up as false with context.step_up, deny with reasons', async t => {
  const permit = await post('/access/v1/evaluation', { subject: await user(['pwd', 'otp']), action: { name: 'payments.payout' }, resource: { type: 'payments', id: 'p-1' } }, { 'x-request-id': 'req-42' })
  t.equal(permit.statusCode, 200, permit.body)
  t.equal(permit.json().decision, true)
  t.equal(permit.headers['x-request-id'], 'req-42', 'X-Request-ID echoed')

  const stepUp = await post('/access/v1/evaluation', { subject: await user(['pwd']), action: { name: 'payments.payout' }, resource: { type: 'payments', id: 'p-1' }, context: { ip: '81.2.69.142' } })
  const body = stepUp.json()
  t.equal(body.decision, false)
  t.equal(body.context.step_up.required.aal, 2)
  t.equal(body.context.step_up.challenge.status, 401)
  t.match(body.context.step_up.challenge.wwwAuthenticate, /insufficient_user_authentication/)
  t.same(body.context.reason_user, { en: 'Confirm the payout.' })

  const deny = await post('/access/v1/evaluation', { subject: { type: 'user', id: 'u1', properties: { claims: { sub: 'u1', amr: ['hwk', 'pin'], auth_time: nowS() } } }, action: { name: 'records.delete' }, resource: { type: 'records', id: 'r-1' } })
  t.equal(deny.json().decision, false)
  t.same(deny.json().context.reason_admin, { en: 'denied by no-deletes' })
  t.same(deny.json().context.reason_user, { en: 'Records are never deleted.' })

  const badToken = await post('/access/v1/evaluation', { subject: { type: 'user', id: 'u1', properties: { token: 'x.y.z' } }, action: { name: 'payments.payout' }, resource: { type: 'payments', id: 'p' } })
  t.equal(badToken.json().decision, false)
  t.match(badToken.json().context.challenge.wwwAuthenticate, /invalid_token/)
})

t.test('evaluation: bad requests are 400 naming the field; no key is 401', async t => {
  const missing = await post('/access/v1/evaluation', { subject: { type: 'user', id: 'u1' }, action: { name: 'payments.payout' } })
  t.equal(missing.statusCode, 400)
  t.match(missing.json().message, /resource/)
  const badAction = await post('/access/v1/evaluation', { subject: { type: 'user', id: 'u1' }, action: { name: 'not an action!' }, resource: { type: 'x', id: 'y' } })
  t.equal(badAction.statusCode, 400)
  t.match(badAction.json().message, /action\.name/)
  const noKey = await app.inject({ method: 'POST', url: '/access/v1/evaluation', payload: {} })
  t.equal(noKey.statusCode, 401)
})

t.test('evaluations: defaults, execute_all, deny_on_first_deny, permit_on_first_permit', async t => {
  const defaults = { subject: await user(['pwd']), resource: { type: 'payments', id: 'p-1' } }
  const evaluations = [{ action: { name: 'profile.read' } }, { action: { name: 'payments.payout' } }, { action: { name: 'records.delete' } }, { action: { name: 'profile.read' } }]
  const all = await post('/access/v1/evaluations', { ...defaults, evaluations })
  t.same(all.json().evaluations.map((e: { decision: boolean }) => e.decision), [true, false, false, true])
  const firstDeny = await post('/access/v1/evaluations', { ...defaults, evaluations, options: { evaluations_semantic: 'deny_on_first_deny' } })
  t.same(firstDeny.json().evaluations.map((e: { decision: boolean }) => e.decision), [true, false])
  const firstPermit = await post('/access/v1/evaluations', { ...defaults, evaluations: evaluations.slice(1), options: { evaluations_semantic: 'permit_on_first_permit' } })
  t.same(firstPermit.json().evaluations.map((e: { decision: boolean }) => e.decision), [false, false, true])
  const single = await post('/access/v1/evaluations', { ...defaults, action: { name: 'profile.read' } })
  t.same(single.json(), { decision: true, context: { decision_id: single.json().context.decision_id } }, 'no evaluations: answered as one evaluation')
  const mixed = await post('/access/v1/evaluations', { ...defaults, evaluations: [{ action: { name: 'profile.read' } }, { action: { name: 'profile.read' }, subject: { type: 'user', id: 'u2', properties: { token: await issuer.sign({ sub: 'u1' }) } } }] })
  t.equal(mixed.statusCode, 200)
  t.equal(mixed.json().evaluations[1].decision, false, 'an item that is wrong is a denial saying why')
  t.equal(mixed.json().evaluations[1].context.error.status, 400)
  const tooMany = await post('/access/v1/evaluations', { ...defaults, evaluations: Array.from({ length: 65 }, () => ({ action: { name: 'a' } })) })
  t.equal(tooMany.statusCode, 400)
})

t.test('metadata is public', async t => {
  const res = await app.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: 'pdp.example.com' } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { policy_decision_point: 'http://pdp.example.com', access_evaluation_endpoint: 'http://pdp.example.com/access/v1/evaluation', access_evaluations_endpoint: 'http://pdp.example.com/access/v1/evaluations' })
})

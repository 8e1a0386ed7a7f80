// Status codes and error bodies of the HTTP API (docs/api.md#post-decide, docs/operations.md): every 4xx is exactly
// `{ error, message }` and the message names the field.
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, decide, postDecide, session } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const { app } = await buildTestApp({ geo })
t.teardown(() => app.close())

const ok = { action: 'profile.read', ...session('user-1', ['pwd']) }

/** The one shape of every 4xx: exactly `{ error, message }`, JSON, the message naming `field`. */
function assertError (t: Test, res: LightMyRequestResponse, status: number, code: string, field: string | RegExp): void {
  t.equal(res.statusCode, status, `status ${status} (body: ${res.body})`)
  t.match(res.headers['content-type'], /^application\/json/, 'a JSON body')
  let body: Record<string, unknown>
  try { body = res.json() } catch { t.fail(`not JSON: ${res.body}`); return }
  t.same(Object.keys(body).sort(), ['error', 'message'], 'exactly { error, message }')
  t.equal(body.error, code, 'error code')
  t.type(body.message, 'string')
  if (typeof field === 'string') t.ok(String(body.message).includes(field), `the message names "${field}": ${String(body.message)}`)
  else t.match(body.message, field, 'the message names the field')
}

t.test('200 for allow, step_up and deny', async t => {
  const allow = await postDecide(app, ok)
  t.equal(allow.statusCode, 200)
  t.equal(allow.json().decision, 'allow')

  const stepUp = await postDecide(app, { action: 'account.email.change', ...session('user-1', ['pwd']) })
  t.equal(stepUp.statusCode, 200)
  t.equal(stepUp.json().decision, 'step_up')

  const deny = await postDecide(app, { action: 'profile.read', ...session('user-1', ['pwd']), ip: '192.0.2.10' })
  t.equal(deny.statusCode, 200)
  t.equal(deny.json().decision, 'deny', 'the threat list denies 192.0.2.0/24')
})

t.test('400 invalid_request, naming the field', async t => {
  const cases: Array<[string, unknown, string | RegExp]> = [
    ['missing action', { ...session('u', ['pwd']) }, 'action'],
    ['action with an empty segment', { ...ok, action: 'a..b' }, 'action'],
    ['action with a space', { ...ok, action: 'a b' }, 'action'],
    ['action of 201 characters', { ...ok, action: 'a'.repeat(201) }, 'action'],
    ['action with a leading dot', { ...ok, action: '.a' }, 'action'],
    ['empty action', { ...ok, action: '' }, 'action'],
    ['unknown top-level field', { ...ok, admin: true }, 'admin'],
    ['invalid ip', { ...ok, ip: '999.1.1.1' }, 'ip'],
    ['ip that is a host name', { ...ok, ip: 'example.com' }, 'ip'],
    ['no subject.id and no claims.sub', { action: 'profile.read', claims: { amr: ['pwd'] } }, 'subject.id'],
    ['subject.id differs from claims.sub', { action: 'profile.read', subject: { id: 'alice' }, claims: { sub: 'mallory' } }, 'claims.sub'],
    ['context.riskScore 1.5', { ...ok, context: { riskScore: 1.5 } }, 'context.riskScore'],
    ['context.riskScore -0.1', { ...ok, context: { riskScore: -0.1 } }, 'context.riskScore'],
    ['context.riskScore a string', { ...ok, context: { riskScore: '0.5' } }, 'context.riskScore'],
    ['context with 65 keys', { ...ok, context: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) }, 'context'],
    ['context nested 5 deep', { ...ok, context: { a: { b: { c: { d: { e: 1 } } } } } }, 'context'],
    ['context nested 5 deep through arrays', { ...ok, context: { a: [[[{ e: 1 }]]] } }, 'context'],
    ['context that is not an object', { ...ok, context: [1, 2] }, 'context'],
    ['unknown enrolled factor class', { ...ok, subject: { id: 'user-1', enrolledFactors: ['carrier_pigeon'] } }, 'subject.enrolledFactors'],
    ['non-numeric auth_time', { action: 'profile.read', subject: { id: 'u' }, claims: { sub: 'u', auth_time: 'yesterday' } }, 'claims.auth_time'],
    ['auth_time as a numeric string', { action: 'profile.read', subject: { id: 'u' }, claims: { sub: 'u', auth_time: '1763790000' } }, 'claims.auth_time'],
    ['non-numeric iat', { action: 'profile.read', subject: { id: 'u' }, claims: { sub: 'u', iat: 'now' } }, 'claims.iat'],
    ['amr that is not a list', { action: 'profile.read', subject: { id: 'u' }, claims: { sub: 'u', amr: 'pwd' } }, 'claims.amr'],
    ['claims.sub that is not a string', { action: 'profile.read', claims: { sub: 42 } }, 'claims.sub'],
    ['empty subject.id', { action: 'profile.read', subject: { id: '' } }, 'subject.id'],
    ['control character in subject.id', { action: 'profile.read', subject: { id: 'a\nb' } }, 'subject.id'],
    ['control character in tenant', { ...ok, tenant: 'acme\u0000' }, 'tenant'],
    ['unknown field in subject', { ...ok, subject: { id: 'user-1', name: 'Ann' } }, 'subject.name'],
    ['unknown field in device', { ...ok, device: { id: 'x' } }, 'device.id'],
    ['duplicate enrolled factors', { ...ok, subject: { id: 'user-1', enrolledFactors: ['totp', 'totp'] } }, 'subject.enrolledFactors'],
    ['ip with leading zeros', { ...ok, ip: '01.2.3.4' }, 'ip'],
    ['ip with white space', { ...ok, ip: ' 1.2.3.4' }, 'ip'],
    ['IPv6 with an interface zone', { ...ok, ip: 'fe80::1%eth0' }, 'ip']
  ]
  for (const [name, body, field] of cases) {
    t.test(name, async t => assertError(t, await postDecide(app, body), 400, 'invalid_request', field))
  }

  t.test('invalid JSON body', async t => {
    const res = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'application/json' }, payload: '{"action": "profile.read",' })
    assertError(t, res, 400, 'invalid_request', 'body')
  })

  t.test('empty body', async t => {
    const res = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'application/json' }, payload: '' })
    assertError(t, res, 400, 'invalid_request', 'body')
  })

  for (const payload of ['[1,2]', 'null', '"payments.payout"', '42']) {
    t.test(`a JSON body that is not an object: ${payload}`, async t => {
      const res = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'application/json' }, payload })
      assertError(t, res, 400, 'invalid_request', 'body')
    })
  }

  t.test('context nested far too deep does not crash', async t => {
    const payload = `{"action":"profile.read","subject":{"id":"u"},"context":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`
    assertError(t, await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'application/json' }, payload }), 400, 'invalid_request', 'context')
  })

  t.test('a __proto__ key is refused, not merged', async t => {
    const res = await app.inject({
      method: 'POST',
      url: '/decide',
      headers: { 'content-type': 'application/json' },
      payload: '{"action":"profile.read","subject":{"id":"u"},"__proto__":{"polluted":true}}'
    })
    t.equal(res.statusCode, 400)
    t.equal(res.json().error, 'invalid_request')
    t.same(Object.keys(res.json()).sort(), ['error', 'message'])
    t.equal(({} as Record<string, unknown>).polluted, undefined)
  })
})

t.test('boundaries that are accepted', async t => {
  t.equal((await decide(app, { ...ok, action: 'a'.repeat(200) })).decision, 'allow', 'an action of 200 characters')
  t.equal((await decide(app, { ...ok, action: 'ns:x/y-z.a' })).decision, 'allow', ': / and - are ordinary characters')
  t.equal((await decide(app, { ...ok, context: { a: { b: { c: { d: 1 } } } } })).decision, 'allow', 'context nested 4 deep')
  t.equal((await decide(app, { ...ok, context: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, i])) })).decision, 'allow', '64 context keys')
  t.equal((await decide(app, { ...ok, context: { riskScore: 0 } })).decision, 'allow', 'riskScore 0')
  t.equal((await decide(app, { action: 'profile.read', claims: { sub: 'only-claims', amr: ['pwd'] } })).decision, 'allow', 'the subject from claims.sub alone')
  t.equal((await decide(app, { action: 'profile.read', subject: { id: 'only-subject' } })).decision, 'allow', 'the subject from subject.id alone')
  t.equal((await decide(app, { ...ok, ip: '2001:db8::1' })).decision, 'allow', 'an IPv6 address')
})

t.test('413 payload_too_large for a body over 64 KiB', async t => {
  const body = JSON.stringify({ ...ok, context: { pad: 'x'.repeat(70 * 1024) } })
  t.ok(Buffer.byteLength(body) > 64 * 1024)
  const res = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'application/json' }, payload: body })
  assertError(t, res, 413, 'payload_too_large', 'body')
})

t.test('415 unsupported_media_type for a body that is not application/json', async t => {
  t.test('text/plain', async t => {
    const res = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify(ok) })
    assertError(t, res, 415, 'unsupported_media_type', 'content-type')
  })
  for (const type of ['application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x']) {
    t.test(type, async t => {
      const res = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': type }, payload: 'action=profile.read' })
      assertError(t, res, 415, 'unsupported_media_type', 'content-type')
    })
  }
  t.test('no content-type', async t => {
    const res = await app.inject({ method: 'POST', url: '/decide', payload: JSON.stringify(ok) })
    assertError(t, res, 415, 'unsupported_media_type', 'content-type')
  })
  t.test('application/json with a charset is JSON', async t => {
    const res = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: JSON.stringify(ok) })
    t.equal(res.statusCode, 200)
  })
})

t.test('404 not_found for an unknown route', async t => {
  assertError(t, await app.inject({ method: 'GET', url: '/nope?x=1' }), 404, 'not_found', '/nope')
  assertError(t, await app.inject({ method: 'GET', url: '/decide' }), 404, 'not_found', '/decide')
  assertError(t, await app.inject({ method: 'PUT', url: '/decide', payload: ok }), 404, 'not_found', '/decide')
  assertError(t, await app.inject({ method: 'POST', url: '/decide/extra', payload: ok }), 404, 'not_found', '/decide/extra')
})

t.test('401 unauthorized when API_KEYS is set', async t => {
  const key = 'k'.repeat(32)
  const { app: keyed } = await buildTestApp({ geo, apiKeys: [key, 'second-key-0123456789abcdef0123'] })
  t.teardown(() => keyed.close())

  t.test('without a key', async t => {
    const res = await postDecide(keyed, ok)
    assertError(t, res, 401, 'unauthorized', /authorization/i)
    t.match(res.headers['www-authenticate'], /^Bearer realm="/, 'a Bearer challenge for the API key')
  })
  t.test('with a wrong key', async t => {
    assertError(t, await postDecide(keyed, ok, { authorization: `Bearer ${'x'.repeat(32)}` }), 401, 'unauthorized', /authorization/i)
  })
  t.test('with a prefix of the right key', async t => {
    assertError(t, await postDecide(keyed, ok, { authorization: `Bearer ${key.slice(0, 31)}` }), 401, 'unauthorized', /authorization/i)
  })
  t.test('with the key in another scheme', async t => {
    assertError(t, await postDecide(keyed, ok, { authorization: `Basic ${key}` }), 401, 'unauthorized', /authorization/i)
  })
  t.test('the key is checked before the body: a bad body without a key is 401', async t => {
    const res = await keyed.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'application/json' }, payload: '{"action":"a..b"}' })
    t.equal(res.statusCode, 401)
  })
  t.test('with the right key (either one)', async t => {
    t.equal((await decide(keyed, ok, { authorization: `Bearer ${key}` })).decision, 'allow')
    t.equal((await decide(keyed, ok, { authorization: 'bearer second-key-0123456789abcdef0123' })).decision, 'allow', 'the scheme is case-insensitive')
  })
  t.test('/healthz, /readyz and /metrics need no key', async t => {
    t.equal((await keyed.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
    t.equal((await keyed.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
    t.equal((await keyed.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
  })
  t.test('POST /events needs the key too', async t => {
    const res = await keyed.inject({ method: 'POST', url: '/events', payload: { decisionId: '01a20320-a200-7000-8000-000000000000', event: 'auth.step_up_completed' } })
    assertError(t, res, 401, 'unauthorized', /authorization/i)
  })
})

t.test('admin routes', async t => {
  t.test('are off (404) when ADMIN_API_KEYS is unset', async t => {
    assertError(t, await app.inject({ method: 'GET', url: '/policies' }), 404, 'not_found', '/policies')
    assertError(t, await app.inject({ method: 'GET', url: '/audit' }), 404, 'not_found', '/audit')
  })
  t.test('need an admin key, not an API key', async t => {
    const apiKey = 'a'.repeat(32)
    const adminKey = 'z'.repeat(32)
    const { app: admin } = await buildTestApp({ geo, apiKeys: [apiKey], adminApiKeys: [adminKey] })
    t.teardown(() => admin.close())
    assertError(t, await admin.inject({ method: 'GET', url: '/policies' }), 401, 'unauthorized', /authorization/i)
    assertError(t, await admin.inject({ method: 'GET', url: '/policies', headers: { authorization: `Bearer ${apiKey}` } }), 401, 'unauthorized', /authorization/i)
    const res = await admin.inject({ method: 'GET', url: '/policies', headers: { authorization: `Bearer ${adminKey}` } })
    t.equal(res.statusCode, 200)
    t.ok(res.json().policies.some((p: { id: string }) => p.id === 'large-payouts'))
  })
})

t.test('POST /events errors are { error, message } too', async t => {
  t.test('an unknown decisionId is 404', async t => {
    const res = await app.inject({ method: 'POST', url: '/events', payload: { decisionId: '01a20320-a200-7000-8000-000000000000', event: 'auth.step_up_completed' } })
    assertError(t, res, 404, 'not_found', 'decisionId')
  })
  t.test('a malformed decisionId is 400', async t => {
    const res = await app.inject({ method: 'POST', url: '/events', payload: { decisionId: 'nope', event: 'auth.step_up_completed' } })
    assertError(t, res, 400, 'invalid_request', 'decisionId')
  })
  t.test('a second outcome for one step-up is 409', async t => {
    const stepUp = await decide(app, { action: 'account.email.change', ...session('events-1', ['pwd']) })
    t.equal(stepUp.decision, 'step_up')
    const report = { decisionId: stepUp.decisionId, event: 'auth.step_up_completed' }
    t.equal((await app.inject({ method: 'POST', url: '/events', payload: report })).statusCode, 200)
    assertError(t, await app.inject({ method: 'POST', url: '/events', payload: report }), 409, 'conflict', 'decisionId')
  })
})

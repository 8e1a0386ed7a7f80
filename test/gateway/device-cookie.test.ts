// DEVICE_COOKIE: a front end that keeps its device id in a cookie rather than a header. The
// cookie's value is the same fingerprint the header would carry (one device id either way).
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { cookieValue } from '../../src/gateway/decide.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from '../tokens/app.js'
import { makeKey, TestIssuer } from '../tokens/issuer-server.js'

t.test('cookieValue reads one cookie of a Cookie header', async t => {
  t.equal(cookieValue('a=1; did=laptop-1; b=2', 'did'), 'laptop-1')
  t.equal(cookieValue('did="quoted value"', 'did'), 'quoted value')
  t.equal(cookieValue(['a=1', 'did=x'], 'did'), 'x')
  t.equal(cookieValue('xdid=1; didx=2', 'did'), undefined, 'names match whole')
  t.equal(cookieValue(undefined, 'did'), undefined)
  t.equal(cookieValue('did', 'did'), undefined, 'a pair without = is no cookie')
})

t.test('DEVICE_COOKIE is validated, naming the variable', async t => {
  t.equal(loadConfig({ POLICIES_DIR: process.cwd() }).deviceCookie, undefined)
  t.equal(loadConfig({ POLICIES_DIR: process.cwd(), DEVICE_COOKIE: 'stepup_did' }).deviceCookie, 'stepup_did')
  t.throws(() => loadConfig({ POLICIES_DIR: process.cwd(), DEVICE_COOKIE: 'bad name;' }), /DEVICE_COOKIE/)
})

t.test('the cookie names the same device as the header; a new cookie value is a new device', async t => {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())
  const issuer = await new TestIssuer().start()
  t.teardown(() => issuer.stop())
  issuer.keys = [await makeKey('ES256', 'k1')]
  const folder = `
issuers:
  - issuer: ${issuer.url}
    audience: [https://api.example.com]
routes:
  - match: { path: /v1/profile }
    action: profile.read
policies:
  - id: new-device
    actions: [profile.read]
    when: [newDevice: {}]
    require: { aal: 2, maxAge: 15m }
`
  const { app, dir } = await tokenApp({ geo, files: { 'p.yaml': folder }, config: { deviceCookie: 'did' } })
  t.teardown(async () => { await app.close(); cleanup(dir) })
  const nowS = Math.floor(Date.now() / 1000)
  const ask = async (amr: string[], headers: Record<string, string>) => app.inject({
    method: 'GET',
    url: '/authz/auth-request',
    headers: { 'x-original-method': 'GET', 'x-original-url': 'https://api.example.com/v1/profile', authorization: `Bearer ${await issuer.sign({ sub: 'u1', amr, auth_time: nowS - 10 })}`, ...headers }
  })
  t.equal((await ask(['pwd', 'otp'], { cookie: 'theme=dark; did=laptop-1' })).statusCode, 200, 'a strong session teaches the device from the cookie')
  t.equal((await ask(['pwd'], { 'x-device-fingerprint': 'laptop-1' })).statusCode, 200, 'the header with the same value is the same device')
  t.equal((await ask(['pwd'], { cookie: 'did=laptop-1' })).statusCode, 200, 'and so is the cookie again')
  t.equal((await ask(['pwd'], { cookie: 'did=phone-9' })).statusCode, 401, 'another cookie value is a new device: step up')
  t.equal((await ask(['pwd'], { cookie: `did=${'x'.repeat(2000)}` })).statusCode, 400, 'an oversized cookie is refused naming it')
})

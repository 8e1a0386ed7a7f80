// An issuer whose keys cannot be had: down, slow, junk, huge. Each answer comes quickly, is
// never allow, and one issuer's trouble does not hold up requests that need no keys.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from './app.js'
import { issuerPolicies, makeKey, TestIssuer } from './issuer-server.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const nowS = (): number => Math.floor(Date.now() / 1000)

for (const mode of ['down', 'slow', 'junk', 'huge'] as const) {
  t.test(`JWKS ${mode}: deny with a 503 challenge, "issuer keys unavailable", quickly`, async t => {
    const issuer = await new TestIssuer().start()
    issuer.keys = [await makeKey('ES256', 'k1')]
    issuer.mode = mode
    const { app, dir, clock } = await tokenApp({ geo, files: { 'p.yaml': issuerPolicies(issuer.url) }, fetchTimeoutMs: 1500 })
    t.teardown(async () => { await app.close(); await issuer.stop(); cleanup(dir) })
    const token = await issuer.sign({ sub: 'u1', org_id: 'acme', amr: ['hwk', 'pin'], auth_time: nowS() })
    const started = performance.now()
    const pending = Promise.all(Array.from({ length: 20 }, () => app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.payout', token } })))
    // While those wait on the issuer, a request that needs no keys is answered at once.
    const meanwhile = performance.now()
    const other = await app.inject({ method: 'POST', url: '/decide', payload: { action: 'profile.read', subject: { id: 'u2' } } })
    t.equal(other.statusCode, 200)
    t.ok(performance.now() - meanwhile < 750, `not held up by the issuer (${Math.round(performance.now() - meanwhile)} ms)`)
    const answers = await pending
    t.ok(performance.now() - started < 4000, `answered in ${Math.round(performance.now() - started)} ms`)
    for (const res of answers) {
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.equal(body.decision, 'deny')
      t.equal(body.challenge.status, 503)
      t.equal(body.reasons[0].detail, 'issuer keys unavailable')
    }
    const hits = issuer.jwksHits
    t.ok(hits <= 2, `the JWKS was asked at most twice (prefetch + first request), not per request: ${hits}`)

    // Within 30 s nobody waits on the issuer again: an answer with no fetch.
    const again = performance.now()
    const res = await app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.payout', token } })
    t.equal(res.json().challenge.status, 503)
    t.ok(performance.now() - again < 200, 'no new fetch inside the interval')

    // Requests with no token are not held up by it.
    const plain = await app.inject({ method: 'POST', url: '/decide', payload: { action: 'profile.read', subject: { id: 'u1' } } })
    t.equal(plain.statusCode, 200)

    // The issuer recovers: after the interval, keys are fetched and the token verifies.
    issuer.mode = 'ok'
    clock.offsetMs += 31_000
    const ok = await app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.payout', token } })
    t.equal(ok.json().decision, 'allow', ok.body)
  })
}

t.test('keys cached per Cache-Control; a failed refresh keeps serving the known keys', async t => {
  const issuer = await new TestIssuer().start()
  issuer.keys = [await makeKey('EdDSA', 'ed-1')]
  issuer.cacheControl = 'public, max-age=60'
  const { app, dir, clock } = await tokenApp({ geo, files: { 'p.yaml': issuerPolicies(issuer.url) }, fetchTimeoutMs: 300 })
  t.teardown(async () => { await app.close(); await issuer.stop(); cleanup(dir) })
  const sign = () => issuer.sign({ sub: 'u1', org_id: 'acme', amr: ['pwd', 'otp'], auth_time: nowS(), jti: String(Math.random()) })
  const decide = async () => (await app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.payout', token: await sign() } })).json()
  t.equal((await decide()).decision, 'allow')
  const hits = issuer.jwksHits
  clock.offsetMs += 30_000
  t.equal((await decide()).decision, 'allow')
  t.equal(issuer.jwksHits, hits, 'still fresh at 30 s (max-age 60)')
  clock.offsetMs += 40_000
  issuer.mode = 'down'
  t.equal((await decide()).decision, 'allow', 'stale keys keep serving while the refresh fails')
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(issuer.jwksHits, hits + 1, 'one refresh after max-age')
})

// A real nginx running examples/nginx in front of a Node upstream, asking a real stepup-pdp
// (auth_request) that verifies tokens from a real HTTP issuer. What a client sees.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import * as oauth from 'oauth4webapi'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from '../tokens/app.js'
import { makeKey, TestIssuer } from '../tokens/issuer-server.js'
import { requireNginx, startNginx, startUpstream } from './nginx.js'

if (requireNginx(t)) {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())

  const KEY = 'nginx-key-0123456789abcdef'
  const issuer = await new TestIssuer().start()
  t.teardown(() => issuer.stop())
  issuer.keys = [await makeKey('RS256', 'rsa-1')]

  const policies = `
  issuers:
    - issuer: ${issuer.url}
      audience: [https://api.example.com]
      tenant: { claim: org_id }
  callers:
    - name: nginx
      tenants: [acme]
  routes:
    - match: { methods: [POST], path: /v1/payouts/:id }
      action: payments.payout
      resource: payments
      context: { payoutId: params.id, amount: header.x-payout-amount }
    - match: { methods: [GET], path: /v1/profile }
      action: profile.read
  policies:
    - id: payouts
      actions: [payments.payout]
      require: { aal: 2, maxAge: 15m }
      message: Confirm the payout.
    - id: no-unrouted-deletes
      actions: [http.delete]
      effect: deny
  `
  const pdp = await tokenApp({ geo, files: { 'p.yaml': policies }, config: { apiKeys: [`nginx:${KEY}`] } })
  await pdp.app.listen({ port: 0, host: '127.0.0.1' })
  const upstream = await startUpstream()
  const nginx = await startNginx({ pdp: (pdp.app.server.address() as AddressInfo).port, upstream: upstream.port, key: KEY })
  t.teardown(async () => {
    await nginx.stop()
    upstream.server.close()
    await pdp.app.close()
    cleanup(pdp.dir)
  })

  const base = `http://127.0.0.1:${nginx.port}`
  const nowS = (): number => Math.floor(Date.now() / 1000)
  const token = (amr: string[], extra: Record<string, unknown> = {}) => issuer.sign({ sub: 'u1', org_id: 'acme', amr, auth_time: nowS() - 60, ...extra })

  /** The challenge as an OAuth client library reads it. */
  async function challengeOf (accessToken: string, path: string): Promise<oauth.WWWAuthenticateChallenge[]> {
    try {
      const res = await oauth.protectedResourceRequest(accessToken, 'POST', new URL(base + path), new Headers({ 'x-payout-amount': '250' }), null, { [oauth.allowInsecureRequests]: true })
      throw new Error(`no challenge: HTTP ${res.status}`)
    } catch (err) {
      if (err instanceof oauth.WWWAuthenticateChallengeError) return err.cause
      throw err
    }
  }

  t.test('a weak token gets nginx\'s 401 with the RFC 9470 challenge', async t => {
    const hits = upstream.hits
    const res = await fetch(`${base}/v1/payouts/42`, { method: 'POST', headers: { authorization: `Bearer ${await token(['pwd'])}` } })
    t.equal(res.status, 401)
    const challenges = await challengeOf(await token(['pwd']), '/v1/payouts/42')
    t.equal(challenges.length, 1)
    t.equal(challenges[0]!.scheme, 'bearer')
    t.equal(challenges[0]!.parameters.error, 'insufficient_user_authentication')
    t.ok(String(challenges[0]!.parameters.acr_values).length > 0, 'acr_values')
    t.equal(challenges[0]!.parameters.max_age, '900')
    t.equal(upstream.hits, hits, 'the upstream never saw it')
  })

  t.test('a strong token reaches the upstream with the decision headers, not the client\'s', async t => {
    const res = await fetch(`${base}/v1/payouts/42`, { method: 'POST', headers: { authorization: `Bearer ${await token(['pwd', 'otp'])}`, 'x-stepup-decision-id': 'forged', 'x-stepup-aal': '3' }, body: '{"amount": 5}' })
    t.equal(res.status, 200)
    const body = await res.json() as { upstream: boolean, method: string, headers: Record<string, string> }
    t.equal(body.upstream, true)
    t.equal(body.method, 'POST')
    t.match(body.headers['x-stepup-decision-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-7/)
    t.equal(body.headers['x-stepup-decision'], 'allow')
    t.equal(body.headers['x-stepup-subject'], 'u1')
    t.equal(body.headers['x-stepup-aal'], '2')
  })

  t.test('no token where a policy needs a session: 401 Bearer with no error code', async t => {
    const res = await fetch(`${base}/v1/payouts/42`, { method: 'POST' })
    t.equal(res.status, 401)
    t.equal(res.headers.get('www-authenticate'), 'Bearer realm="stepup-pdp"')
    const open = await fetch(`${base}/v1/profile`)
    t.equal(open.status, 200, 'an action no policy guards passes without a token')
  })

  t.test('a bad token gets 401 invalid_token', async t => {
    for (const bad of ['garbage', (await token(['pwd', 'otp'])).slice(0, -4) + 'AAAA', await token(['pwd', 'otp'], { exp: nowS() - 3600, iat: nowS() - 7200 })]) {
      const res = await fetch(`${base}/v1/payouts/42`, { method: 'POST', headers: { authorization: `Bearer ${bad}` } })
      t.equal(res.status, 401)
      t.match(res.headers.get('www-authenticate'), /^Bearer error="invalid_token", error_description="/)
    }
  })

  t.test('an unrouted request is an http.<method> action the policies can deny', async t => {
    const res = await fetch(`${base}/anything/else`, { method: 'DELETE', headers: { authorization: `Bearer ${await token(['pwd', 'otp'])}` } })
    t.equal(res.status, 403)
  })

  t.test('a token of a tenant outside nginx\'s scope never reaches the upstream', async t => {
    const hits = upstream.hits
    const res = await fetch(`${base}/v1/profile`, { headers: { authorization: `Bearer ${await token(['pwd', 'otp'], { org_id: 'globex' })}` } })
    t.not(res.status, 200)
    t.equal(upstream.hits, hits)
  })

  t.test('stepup-pdp down: nginx fails closed', async t => {
    await pdp.app.close()
    const hits = upstream.hits
    const res = await fetch(`${base}/v1/profile`, { headers: { authorization: `Bearer ${await token(['pwd', 'otp'])}` } })
    t.equal(res.status, 500)
    t.equal(upstream.hits, hits)
  })
}

// The whole loop a user lives, with real parts: an OpenID Provider (oidc-provider), nginx running
// examples/nginx, stepup-pdp and an upstream. Password login -> nginx 401 with acr_values and
// max_age -> an authorization request carrying them -> a second factor -> new token -> 200.
// Then the provider rotates its signing key and the PDP picks it up without a restart.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import * as oauth from 'oauth4webapi'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from '../tokens/app.js'
import { Browser, OpenIdProvider, RESOURCE } from '../tokens/openid-provider.js'
import { requireNginx, startNginx, startUpstream } from './nginx.js'

if (requireNginx(t)) {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())

  const op = await new OpenIdProvider().start()
  t.teardown(() => op.stop())
  const KEY = 'nginx-key-0123456789abcdef'
  const pdp = await tokenApp({
    geo,
    config: { apiKeys: [`nginx:${KEY}`] },
    files: {
      'api.yaml': `
  issuers:
    - issuer: ${op.issuer}
      audience: [${RESOURCE}]
  routes:
    - match: { methods: [POST], path: /v1/payouts/:id }
      action: payments.payout
      context: { payoutId: params.id }
  policies:
    - id: payouts
      actions: [payments.payout]
      require: { aal: 2, maxAge: 10m }
      message: Confirm the payout with your second factor.
  `
    }
  })
  await pdp.app.listen({ port: 0, host: '127.0.0.1' })
  const upstream = await startUpstream()
  const nginx = await startNginx({ pdp: (pdp.app.server.address() as AddressInfo).port, upstream: upstream.port, key: KEY })
  t.teardown(async () => { await nginx.stop(); upstream.server.close(); await pdp.app.close(); cleanup(pdp.dir) })

  const payout = (token: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${nginx.port}/v1/payouts/p-77`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })

  async function challenge (token: string): Promise<Record<string, string>> {
    try {
      await oauth.protectedResourceRequest(token, 'POST', new URL(`http://127.0.0.1:${nginx.port}/v1/payouts/p-77`), new Headers(), null, { [oauth.allowInsecureRequests]: true })
    } catch (err) {
      if (err instanceof oauth.WWWAuthenticateChallengeError) return err.cause[0]!.parameters as Record<string, string>
      throw err
    }
    throw new Error('no challenge')
  }

  t.test('password login -> 401 step-up -> second factor -> 200', async t => {
    const browser = new Browser()
    const weak = await browser.authorize(op.issuer, {})
    const weakClaims = decodeJwt(weak)
    t.same(weakClaims.amr, ['pwd'], 'the provider issued a password-only token')
    t.type(weakClaims.auth_time, 'number')
    t.equal(decodeProtectedHeader(weak).typ, 'at+jwt')

    const first = await payout(weak)
    t.equal(first.status, 401)
    const params = await challenge(weak)
    t.equal(params.error, 'insufficient_user_authentication')
    t.equal(params.acr_values, 'http://idmanagement.gov/ns/assurance/aal/2')
    t.equal(params.max_age, '600')

    const strong = await browser.authorize(op.issuer, { acr_values: params.acr_values!, max_age: params.max_age! })
    t.same(op.logins.at(-1), { acr: 'http://idmanagement.gov/ns/assurance/aal/2', amr: ['pwd', 'otp'] }, 'the user logged in again with a second factor')
    t.equal(decodeJwt(strong).acr, 'http://idmanagement.gov/ns/assurance/aal/2')

    const second = await payout(strong)
    t.equal(second.status, 200)
    const body = await second.json() as { upstream: boolean, headers: Record<string, string> }
    t.equal(body.upstream, true)
    t.equal(body.headers['x-stepup-subject'], 'user-1')
    t.match(body.headers['x-stepup-decision-id'], /^[0-9a-f-]{36}$/)
  })

  t.test('a key rotation at the provider is picked up without a restart', async t => {
    const kid = await op.rotateKeys()
    pdp.clock.offsetMs += 31_000 // past the unknown-kid refetch interval
    const browser = new Browser()
    const weak = await browser.authorize(op.issuer, {})
    const params = await challenge(weak)
    const strong = await browser.authorize(op.issuer, { acr_values: params.acr_values!, max_age: params.max_age! })
    t.equal(decodeProtectedHeader(strong).kid, kid, 'signed with the new key')
    const res = await payout(strong)
    t.equal(res.status, 200)
  })
}

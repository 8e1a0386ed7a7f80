// The v2 answers over HTTP: what the engine adds (required.scopes, session.acrProves, the
// invalid_token and futile-challenge denies, DPoP and insufficient_scope challenges) survives the
// response schema, and every challenge parses with a standard client (oauth4webapi).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, decide, NOW_S } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const dir = mkdtempSync(join(tmpdir(), 'stepup-v2-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'policies.yaml'), `
policies:
  - id: admin
    actions: [admin.op]
    require: { aal: 2, factors: [security_key, smart_card, passkey], maxAge: 10m }
    message: Confirm with your passkey.
  - id: not-sms
    actions: [otp.op]
    require: { aal: 2, factors: [totp], maxAge: 15m }
  - id: payouts
    actions: [payments.payout]
    require: { aal: 2, maxAge: 15m, scopes: [payments:high] }
    message: Confirm the payout.
  - id: country
    actions: [country.op]
    when:
      - newCountry: {}
    require: { aal: 2 }
`)

const { app } = await buildTestApp({ geo, policiesDir: dir })
t.teardown(() => app.close())

async function challengesOf (status: number, header: string): Promise<oauth.WWWAuthenticateChallenge[]> {
  try {
    await oauth.protectedResourceRequest('access-token', 'GET', new URL('https://rs.example.com/x'), undefined, undefined, {
      [oauth.customFetch]: async () => new Response(null, { status, headers: { 'www-authenticate': header } })
    })
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) return err.cause
    throw err
  }
  throw new Error(`no challenge in: ${header}`)
}

const body = (action: string, claims: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ action, subject: { id: 'u1' }, claims: { sub: 'u1', ...claims }, ...extra })

t.test('a token with acr phr satisfies the phishing-resistant step-up it was asked for; acrProves is answered', async t => {
  const a = await decide(app, body('admin.op', { acr: 'phr', auth_time: NOW_S - 60 }))
  t.equal(a.decision, 'allow')
  t.same(a.session, { aal: 2, authAge: 60, factors: [], acrProves: ['security_key', 'smart_card', 'passkey'] })
})

t.test('an expired token: deny, 401 invalid_token, the reason names the check', async t => {
  const d = await decide(app, body('admin.op', { amr: ['pwd', 'hwk'], auth_time: NOW_S - 7200, exp: NOW_S - 3600 }))
  t.equal(d.decision, 'deny')
  t.equal(d.challenge?.status, 401)
  const [c] = await challengesOf(401, d.challenge!.wwwAuthenticate!)
  t.equal(c?.scheme, 'bearer')
  t.equal(c?.parameters.error, 'invalid_token')
  t.match(d.reasons, [{ policy: '(token)', trigger: 'token', outcome: 'deny', detail: /^exp: / }])
})

t.test('a futile challenge is a 403 unmet_authentication_requirements with a reason', async t => {
  const d = await decide(app, body('otp.op', { acr: 'http://idmanagement.gov/ns/assurance/aal/2', amr: ['pwd', 'sms'], auth_time: NOW_S - 60 }))
  t.equal(d.decision, 'deny')
  t.equal(d.challenge?.status, 403)
  const [c] = await challengesOf(403, d.challenge!.wwwAuthenticate!)
  t.equal(c?.parameters.error, 'unmet_authentication_requirements')
  t.match(d.reasons.at(-1), { trigger: 'challenge', outcome: 'deny', detail: /no configured acr value expresses the requirement/ })
  t.same(d.enroll, [])
})

t.test('scopes: required.scopes, insufficient_scope (403) or with the step-up (401)', async t => {
  const scopeOnly = await decide(app, body('payments.payout', { amr: ['pwd', 'otp'], auth_time: NOW_S - 60, scope: 'openid' }))
  t.equal(scopeOnly.decision, 'step_up')
  t.same((scopeOnly.required as Record<string, unknown> | undefined)?.scopes, ['payments:high'])
  t.equal(scopeOnly.challenge?.status, 403)
  const [s] = await challengesOf(403, scopeOnly.challenge!.wwwAuthenticate!)
  t.equal(s?.parameters.error, 'insufficient_scope')
  t.equal(s?.parameters.scope, 'payments:high')

  const both = await decide(app, body('payments.payout', { amr: ['pwd'], auth_time: NOW_S - 60 }))
  t.equal(both.challenge?.status, 401)
  const [b] = await challengesOf(401, both.challenge!.wwwAuthenticate!)
  t.equal(b?.parameters.error, 'insufficient_user_authentication')
  t.equal(b?.parameters.scope, 'payments:high')
  t.equal(b?.parameters.max_age, '900')

  const held = await decide(app, body('payments.payout', { amr: ['pwd', 'otp'], auth_time: NOW_S - 60, scp: ['payments:high'] }))
  t.equal(held.decision, 'allow')
})

t.test('a DPoP-bound token (cnf.jkt) gets a DPoP challenge', async t => {
  const d = await decide(app, body('admin.op', { amr: ['pwd'], auth_time: NOW_S - 60, cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } }))
  t.equal(d.decision, 'step_up')
  const [c] = await challengesOf(401, d.challenge!.wwwAuthenticate!)
  t.equal(c?.scheme, 'dpop')
  t.equal(c?.parameters.error, 'insufficient_user_authentication')
  t.equal(c?.parameters.acr_values, 'phr http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true')
})

t.test('no ip: newCountry fires with location unknown', async t => {
  const d = await decide(app, body('country.op', { amr: ['pwd'], auth_time: NOW_S - 60 }))
  t.equal(d.decision, 'step_up')
  t.match(d.reasons, [{ policy: 'country', trigger: 'newCountry', detail: /^location unknown/ }])
})

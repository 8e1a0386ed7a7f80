// POST /decide with a `token`: the PDP verifies it against the issuers of the policy folder.
// A real HTTP issuer (discovery + JWKS) on loopback; every failure is the invalid_token answer.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { loadPolicySet } from '../../src/policy/load.js'
import { cleanup, policyFolder, tokenApp } from './app.js'
import { issuerPolicies, makeKey, TestIssuer } from './issuer-server.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const issuer = await new TestIssuer().start()
t.teardown(() => issuer.stop())
issuer.keys = [await makeKey('ES256', 'k1')]
const { app, verifier, dir, policies } = await tokenApp({ geo, files: { 'p.yaml': issuerPolicies(issuer.url) } })
t.teardown(async () => { await app.close(); cleanup(dir) })

const nowS = (): number => Math.floor(Date.now() / 1000)
const post = (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/decide', payload: body })
const strong = (extra: Record<string, unknown> = {}) => issuer.sign({ sub: 'u1', org_id: 'acme', amr: ['pwd', 'otp'], auth_time: nowS() - 60, ...extra })

t.test('a verified token is the session: strong allows, weak steps up, tenant from the token', async t => {
  const ok = await post({ action: 'payments.payout', token: await strong() })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(ok.json().decision, 'allow')
  const weak = await post({ action: 'payments.payout', token: await issuer.sign({ sub: 'u1', org_id: 'acme', amr: ['pwd'], auth_time: nowS() - 60 }) })
  t.equal(weak.json().decision, 'step_up')
  t.match(weak.json().challenge.wwwAuthenticate, /insufficient_user_authentication/)
})

t.test('a forged or stale token is invalid_token naming the check, never allow', async t => {
  const other = await makeKey('ES256', 'k1') // same kid, another key: a forgery
  const cases: Array<[string, Promise<string> | string, RegExp]> = [
    ['expired', issuer.sign({ sub: 'u1', org_id: 'acme', amr: ['hwk', 'pin'], auth_time: nowS() - 7200 }, { nowS: nowS() - 7200 }), /^exp:/],
    ['not yet valid', strong({ nbf: nowS() + 3600 }), /^nbf:/],
    ['other audience', strong({ aud: 'https://other.example.com' }), /^aud:/],
    ['unknown issuer', strong({ iss: 'https://evil.example.com' }), /^iss:/],
    ['forged signature', issuer.sign({ sub: 'u1', org_id: 'acme', amr: ['hwk', 'pin'], auth_time: nowS() }, { key: other }), /^signature:/],
    ['wrong typ', strong().then(() => issuer.sign({ sub: 'u1', org_id: 'acme' }, { typ: 'dpop+jwt' })), /^typ:/],
    ['no exp', strong({ exp: undefined }), /^exp:/],
    ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: issuer.url, sub: 'u1', aud: 'https://api.example.com', exp: nowS() + 600, amr: ['hwk', 'pin'] })).toString('base64url')}.`, /^(alg|format):/],
    ['HS256', `${Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'k1' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: issuer.url, sub: 'u1', aud: 'https://api.example.com', exp: nowS() + 600 })).toString('base64url')}.c2ln`, /^alg:/],
    ['garbage', 'not-a-token', /^format:/],
    ['bad base64 JSON', 'eyJhbGciOi.eyJzdWIi.c2ln', /^format:/],
    ['no sub', issuer.sign({ org_id: 'acme', amr: ['hwk', 'pin'], auth_time: nowS() }), /^sub:/],
    ['no tenant claim', issuer.sign({ sub: 'u1', amr: ['pwd', 'otp'], auth_time: nowS() }), /^org_id:/]
  ]
  for (const [name, token, check] of cases) {
    const res = await post({ action: 'payments.payout', token: await token })
    t.equal(res.statusCode, 200, `${name}: ${res.body}`)
    const body = res.json()
    t.equal(body.decision, 'deny', name)
    t.equal(body.challenge.status, 401, name)
    t.match(body.challenge.wwwAuthenticate, /^Bearer error="invalid_token", error_description="[\x20-\x21\x23-\x5b\x5d-\x7e]+"$/, name)
    t.match(body.reasons[0].detail, check, `${name}: ${body.reasons[0].detail}`)
    t.notMatch(res.body, /"(x|y|n|d)":/, `${name}: no key material`)
  }
})

t.test('bad input around the token gets 400 naming the field', async t => {
  const both = await post({ action: 'payments.payout', token: await strong(), claims: { sub: 'u1' } })
  t.equal(both.statusCode, 400)
  t.match(both.json().message, /token/)
  const huge = await post({ action: 'payments.payout', token: 'a'.repeat(16 * 1024 + 1) })
  t.equal(huge.statusCode, 400)
  t.match(huge.json().message, /token/)
  const tenant = await post({ action: 'payments.payout', tenant: 'globex', token: await strong() })
  t.equal(tenant.statusCode, 400)
  t.match(tenant.json().message, /^tenant:/)
  const raw = await post({ action: 'payments.payout', claims: { sub: 'u1', amr: ['hwk', 'pin'], auth_time: nowS() } })
  t.equal(raw.statusCode, 400, 'raw claims are refused once issuers exist')
  t.equal(raw.json().error, 'claims_not_accepted')
})

t.test('verified tokens are cached: the second answer needs no signature check', async t => {
  const token = await strong()
  const first = await post({ action: 'payments.payout', token })
  const hits = issuer.jwksHits
  const started = performance.now()
  for (let i = 0; i < 200; i++) await post({ action: 'payments.payout', token })
  t.equal(first.json().decision, 'allow')
  t.equal(issuer.jwksHits, hits, 'no key fetch for a cached token')
  t.ok(performance.now() - started < 5000, 'fast enough')
})

t.test('unknown kid: a flood refetches the keys at most once per 30 s', async t => {
  const stranger = await makeKey('ES256', 'unknown-kid')
  const before = verifier.fetchesOf({ issuer: issuer.url, jwksUri: undefined } as never)
  const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => post({ action: 'payments.payout', token: await issuer.sign({ sub: `u${i}`, org_id: 'acme', amr: ['pwd', 'otp'], auth_time: nowS() }, { key: stranger }) })))
  for (const a of answers) t.match(a.json().reasons[0].detail, /^kid:/)
  const after = verifier.fetchesOf({ issuer: issuer.url, jwksUri: undefined } as never)
  t.ok(after - before <= 1, `at most one refetch (${after - before})`)
})

t.test('the engine learns what the verifying issuer declares: DPoP binding from cnf.jkt', async t => {
  const { resolveIdentity, issuerFacts } = await import('../../src/tokens/identity.js')
  const { gatewayConfigOf } = await import('../../src/policy/gateway-config.js')
  const { loadPolicySet } = await import('../../src/policy/load.js')
  const { set } = await loadPolicySet(dir)
  const config = gatewayConfigOf(set)
  const bound = await resolveIdentity({ token: { value: await strong({ cnf: { jkt: 'thumbprint' } }), field: 'token', scheme: 'Bearer' } }, config, undefined, verifier, 30)
  t.equal(bound.kind, 'session')
  if (bound.kind === 'session') t.same(issuerFacts(bound), { dpopBound: true, tokenVerified: true })
  const dpop = await resolveIdentity({ token: { value: await strong(), field: 'authorization', scheme: 'DPoP' } }, config, undefined, verifier, 30)
  if (dpop.kind === 'session') t.same(issuerFacts(dpop), { dpopBound: true, tokenVerified: true })
  const plain = await resolveIdentity({ token: { value: await strong(), field: 'token', scheme: 'Bearer' } }, config, undefined, verifier, 30)
  if (plain.kind === 'session') t.same(issuerFacts(plain), { tokenVerified: true })
})

t.test('issuers reload with the policy set: a cached verification does not outlive its issuer config', async t => {
  const token = await strong()
  t.equal((await post({ action: 'payments.payout', token })).json().decision, 'allow')
  const original = policies.current
  const other = policyFolder({ 'p.yaml': issuerPolicies(issuer.url).replace('audience: [https://api.example.com]', 'audience: [https://other-api.example.com]') })
  t.teardown(() => { policies.replace(original); cleanup(other) })
  policies.replace((await loadPolicySet(other)).set)
  const after = (await post({ action: 'payments.payout', token })).json()
  t.equal(after.decision, 'deny')
  t.match(after.reasons[0].detail, /^aud:/)
})

// What a token verifier sets on the request (issuer's acr map and step-up claim, DPoP binding)
// and the invalid_token answer it reuses: through decide(), as the verifier will call it.
import t from 'tap'
import { invalidTokenDecision } from '../../src/engine/challenge.js'
import { decide } from '../../src/engine/decide.js'
import type { DecisionRequest, Facts } from '../../src/engine/model.js'
import { compilePolicies } from '../../src/policy/compile.js'

const NOW = 1_800_000_000

function setOf (text: string): NonNullable<ReturnType<typeof compilePolicies>['set']> {
  const { set, problems } = compilePolicies({ policies: [{ file: 'p.yaml', text }], lists: [] })
  if (!set) throw new Error(problems.map(p => p.message).join('; '))
  return set
}

const POLICIES = `
policies:
  - { id: key3, actions: [pay], require: { aal: 3, factors: [security_key], maxAge: 15m } }
  - { id: fresh10, actions: [edit], require: { aal: 2, maxAge: 10m } }
  - { id: fresh5, actions: [tight], require: { aal: 2, maxAge: 5m } }
`

function run (text: string, action: string, claims: Record<string, unknown>, extra: Partial<DecisionRequest> = {}): ReturnType<typeof decide> {
  const set = setOf(text)
  const request: DecisionRequest = {
    action, tenant: undefined, application: undefined, subjectId: 'u1', enrolledFactors: undefined, claims,
    ip: undefined, deviceId: undefined, resource: undefined, context: {}, ...extra
  }
  const facts: Facts = { request, geo: { status: 'none' }, history: { status: 'skipped' }, ipLists: [], onceOnly: { status: 'skipped' } }
  return decide(set, set.plan(request), facts, NOW)
}

t.test("an issuer's acr map is merged over assurance.acr", async t => {
  const issuer = { acr: { 'urn:example:strong': { aal: 3 as const, proves: ['security_key'] }, phr: { aal: 1 as const } } }
  const strong = run(POLICIES, 'pay', { acr: 'urn:example:strong', auth_time: NOW - 60 }, { issuer })
  t.equal(strong.decision, 'allow', 'the issuer value proves AAL 3 and the security key')
  t.same(strong.session, { aal: 3, authAge: 60, factors: [], acrProves: ['security_key'] })

  const raw = run(POLICIES, 'pay', { acr: 'urn:example:strong', auth_time: NOW - 60 })
  t.equal(raw.decision, 'step_up', 'unknown without the issuer')
  t.equal(raw.session.aal, 0)

  const demoted = run(POLICIES, 'edit', { acr: 'phr', auth_time: NOW - 60 }, { issuer })
  t.equal(demoted.session.aal, 1, 'the issuer may redefine a default value for its own tokens')
  t.notOk('acrProves' in demoted.session, 'and what it proves')

  const other = run(POLICIES, 'edit', { acr: 'http://idmanagement.gov/ns/assurance/aal/2', auth_time: NOW - 60 }, { issuer })
  t.equal(other.session.aal, 2, 'values the issuer does not name keep their configured meaning')

  const proto = run(POLICIES, 'edit', { acr: 'constructor', auth_time: NOW - 60 }, { issuer })
  t.equal(proto.session.aal, 0, 'an acr naming an object prototype key is nothing')
})

t.test('a step-up claim counts as the issuer declares it, and only so', async t => {
  const issuer = { stepUpClaim: { claim: 'su', maxAge: 600 } }
  const su = run(POLICIES, 'edit', { amr: ['pwd', 'otp'], su: true, iat: NOW }, { issuer })
  t.equal(su.decision, 'allow', 'a 10 min policy accepts a 10 min step-up claim')
  t.equal(su.session.authAge, 600, 'the worst case')
  t.equal(run(POLICIES, 'tight', { amr: ['pwd', 'otp'], su: true, iat: NOW }, { issuer }).decision, 'step_up', 'a 5 min policy does not')

  const withDefault = `assurance:\n  stepUpClaim: { claim: su, maxAge: 10m }\n${POLICIES}`
  t.equal(run(withDefault, 'edit', { amr: ['pwd', 'otp'], su: true }).decision, 'allow', 'without an issuer, assurance.stepUpClaim applies')
  t.equal(run(withDefault, 'edit', { amr: ['pwd', 'otp'], su: true }, { issuer: {} }).decision, 'step_up',
    'an issuer that declares no step-up claim: the default does not apply to its tokens')
  const otherName = run(withDefault, 'edit', { amr: ['pwd', 'otp'], stepped_up: true }, { issuer: { stepUpClaim: { claim: 'stepped_up', maxAge: 300 } } })
  t.equal(otherName.session.authAge, 300, "the issuer's own claim name")
})

t.test('a DPoP-bound request (the verifier says so) gets DPoP challenges', async t => {
  const d = run(POLICIES, 'edit', { amr: ['pwd'], auth_time: NOW - 60 }, { dpopBound: true })
  t.match(d.challenge?.wwwAuthenticate, /^DPoP error="insufficient_user_authentication", /)
  const expired = run(POLICIES, 'edit', { amr: ['pwd'], auth_time: NOW - 7200, exp: NOW - 3600 }, { dpopBound: true })
  t.match(expired.challenge?.wwwAuthenticate, /^DPoP error="invalid_token", /)
  const bearer = run(POLICIES, 'edit', { amr: ['pwd'], auth_time: NOW - 60 }, { dpopBound: false })
  t.match(bearer.challenge?.wwwAuthenticate, /^Bearer /)
})

t.test('invalidTokenDecision: the answer for any token that is no session', async t => {
  const d = invalidTokenDecision('signature', 'The access token is not valid.', { detail: 'no key matches kid "k1"' })
  t.equal(d.decision, 'deny')
  t.equal(d.event, 'auth.access_denied')
  t.same(d.challenge, { status: 401, wwwAuthenticate: 'Bearer error="invalid_token", error_description="The access token is not valid."' })
  t.same(d.reasons, [{ policy: '(token)', trigger: 'token', outcome: 'deny', detail: 'signature: no key matches kid "k1"' }])
  t.same(d.session, { aal: 0, factors: [] })
  t.notOk('required' in d)
  t.notOk('learn' in d, 'teaches nothing')
  const quoted = invalidTokenDecision('aud', 'Wrong "audience" \\ here é', { dpop: true })
  t.equal(quoted.challenge?.wwwAuthenticate, 'DPoP error="invalid_token", error_description="Wrong \'audience\' / here e"', 'the description is made header-safe')
  t.equal(quoted.reasons[0]?.detail, 'aud: Wrong "audience" \\ here é')
})

t.test('exp: expired beyond the skew is invalid_token, within it is a session; a non-number exp is not checked here', async t => {
  t.equal(run(POLICIES, 'edit', { amr: ['pwd', 'otp'], auth_time: NOW - 60, exp: NOW - 31 }).decision, 'deny')
  t.equal(run(POLICIES, 'edit', { amr: ['pwd', 'otp'], auth_time: NOW - 60, exp: NOW - 30 }).decision, 'allow')
  t.equal(run(POLICIES, 'unguarded', { amr: ['pwd'], auth_time: NOW - 60, exp: NOW - 3600 }).decision, 'deny', 'even where no policy applies')
})

t.test('policy compile errors for the new assurance settings', async t => {
  const errorsOf = (text: string): string[] => compilePolicies({ policies: [{ file: 'a.yaml', text }], lists: [] }).problems.filter(p => p.severity === 'error').map(p => `${p.field}: ${p.message}`)
  t.match(errorsOf('assurance:\n  acr:\n    "urn:x": { aal: 2, proves: [retina_scan] }\n'), [/^assurance\.acr\.urn:x\.proves\[0\]: unknown factor class "retina_scan"/])
  t.match(errorsOf('assurance:\n  factors:\n    password: { multiFactor: true }\n'), [/multiFactor: only a have class can be multi-factor on its own \(this one is know\)/])
  t.match(errorsOf('assurance:\n  stepUpClaim: { claim: su, maxAge: 0 }\n'), [/stepUpClaim\.maxAge: must be more than 0/])
  t.match(errorsOf('assurance:\n  factors:\n    palm: { category: body, amr: [palm], maxAal: 1 }\n'), [/category/])
  t.match(errorsOf('policies:\n  - { id: p, actions: [x], require: { scopes: ["bad scope"] } }\n'), [/scopes/])
  t.match(errorsOf('policies:\n  - { id: p, actions: [x], when: [{ newCountry: { unknownLocation: maybe } }] }\n'), [/unknownLocation/])
  const warningsOf = (text: string): string[] => compilePolicies({ policies: [{ file: 'a.yaml', text }], lists: [] }).problems.filter(p => p.severity === 'warning').map(p => `${p.field}: ${p.message}`)
  t.match(warningsOf('assurance:\n  userVerification: [pin, user]\n  factors:\n    quiz: { category: know, amr: [kba], maxAal: 1 }\n'),
    [/^assurance\.userVerification\[1\]: "user" is user presence/, /^assurance\.factors\.quiz\.amr\[0\]: "kba"/], 'user and kba counted on purpose are warned about')
  t.same(errorsOf('assurance:\n  acr:\n    "urn:x": 2\n    "urn:y": { aal: 3, proves: [smart_card] }\n  factors:\n    palm: { category: are, amr: [palm], maxAal: 1 }\n'), [], 'both acr forms and a new are class are accepted')
})

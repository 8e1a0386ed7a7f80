// The /decide answer (docs/api.md#post-decide) with the example policies, and the RFC 9470 challenge parsed by a
// standard client (oauth4webapi) rather than by our own code.
import t from 'tap'
import * as oauth from 'oauth4webapi'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, decide, FIXTURE_POLICIES, NOW_MS, session, UUIDV7, type DecideAnswer } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const { app } = await buildTestApp({ geo })
t.teardown(() => app.close())

const AAL2 = 'http://idmanagement.gov/ns/assurance/aal/2'
const AAL3 = 'http://idmanagement.gov/ns/assurance/aal/3'
const PAYOUT_MESSAGE = 'Confirm with your security key to send a payout above 1,000.'
const RECOVERY_MESSAGE = 'Confirm it\'s you before changing how we reach you.'
/** RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E. */
const RFC6750_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/**
 * Hands a 401/403 carrying `header` to oauth4webapi as the answer of a protected resource and
 * returns the challenges its WWW-Authenticate parser found. A header it cannot parse yields no
 * challenge error at all, which fails here.
 */
async function parseChallenges (status: number, header: string): Promise<oauth.WWWAuthenticateChallenge[]> {
  try {
    await oauth.protectedResourceRequest('access-token', 'GET', new URL('https://rs.example.com/payouts'), undefined, undefined, {
      [oauth.customFetch]: async () => new Response(null, { status, headers: { 'www-authenticate': header } })
    })
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) return err.cause
    throw err
  }
  throw new Error(`oauth4webapi found no challenge in: ${header}`)
}

/** The raw quoted value of `name` in a header (no escapes are expected inside). */
const rawParam = (header: string, name: string): string | undefined =>
  new RegExp(`(?:^|[ ,])${name}="([^"]*)"`).exec(header)?.[1]

const timestampOf = (uuid: string): number => parseInt(uuid.replace(/-/g, '').slice(0, 12), 16)

t.test('step_up for a large payout on a password-only session (large-payouts)', async t => {
  const body = await decide(app, { action: 'payments.payout', ...session('payer-1', ['pwd']), context: { amount: 2500, currency: 'EUR' } })

  t.equal(body.decision, 'step_up')
  t.match(body.decisionId, UUIDV7, 'decisionId is a UUIDv7')
  t.equal(timestampOf(body.decisionId), NOW_MS, 'its timestamp is the injected clock')
  t.same(body.required, { aal: 3, factors: ['security_key', 'smart_card'], maxAge: 300, acrValues: ['phrh', AAL3] },
    'the strictest requirement: AAL 3, a hardware key (security key or smart card), 5 minutes')
  t.equal(body.challenge?.status, 401)
  t.type(body.challenge?.wwwAuthenticate, 'string')
  t.equal(body.message, PAYOUT_MESSAGE)
  t.match(body.reasons, [], 'reasons is a list')
  const payout = body.reasons.find(r => r.policy === 'large-payouts')
  t.match(payout, { policy: 'large-payouts', trigger: 'condition', outcome: 'step_up', detail: /context\.amount > 1000/ })
  t.match(body.reasons.find(r => r.policy === 'new-device-sensitive'), { trigger: 'newDevice', outcome: 'step_up' },
    'no fingerprint counts as a new device')
  for (const r of body.reasons) t.match(r.outcome, /^(step_up|satisfied|deny)$/, `${r.policy}: outcome`)
  t.match(body.session, { aal: 1, authAge: 0 })
  t.same(body.reportOnly, [])
  t.notOk('enroll' in body, 'no enroll list for a reachable step-up')

  t.test('the header parses with oauth4webapi', async t => {
    const header = body.challenge!.wwwAuthenticate!
    t.match(header, /^[\x20-\x7e]+$/, 'a header value of printable ASCII')
    const challenges = await parseChallenges(401, header)
    t.equal(challenges.length, 1, 'one challenge')
    const [c] = challenges
    t.equal(c?.scheme, 'bearer')
    t.equal(c?.parameters.error, 'insufficient_user_authentication')
    t.equal(c?.parameters.acr_values, `phrh ${AAL3}`, 'acr_values space-separated, in order of preference')
    t.equal(c?.parameters.max_age, '300')
    t.equal(c?.parameters.error_description, PAYOUT_MESSAGE, 'an ASCII message travels unchanged')
  })
})

t.test('payouts at or below the threshold are not guarded by large-payouts', async t => {
  const body = await decide(app, { action: 'payments.payout', ...session('payer-2', ['pwd']), context: { amount: 1000 } })
  t.notOk(body.reasons.some(r => r.policy === 'large-payouts'))
})

t.test('account-recovery-channels: allowed with a fresh AAL 2, step_up with a password', async t => {
  const device = { fingerprint: 'recovery-laptop' }
  // A strong, fresh session from this device is allowed and makes the device known (a
  // passkey, as high-risk-step-up, which reads the device signal, restricts factors), so the later
  // password-only request meets account-recovery-channels alone.
  const strong = await decide(app, { action: 'account.email.change', ...session('recover-1', ['passkey']), device })
  t.equal(strong.decision, 'allow')
  t.notOk('required' in strong, 'no requirement on allow')
  t.notOk('challenge' in strong, 'no challenge on allow')
  t.match(strong.reasons.find(r => r.policy === 'account-recovery-channels'), { outcome: 'satisfied' })
  t.match(strong.session, { aal: 2, authAge: 0 })

  const weak = await decide(app, { action: 'account.email.change', ...session('recover-1', ['pwd'], 60), device })
  t.equal(weak.decision, 'step_up')
  t.match(weak.decisionId, UUIDV7)
  t.not(weak.decisionId, strong.decisionId, 'every decision has its own id')
  t.same(weak.required, { aal: 2, factors: ['security_key', 'smart_card', 'passkey', 'software_key', 'totp', 'sms'], maxAge: 900, acrValues: [AAL2] },
    'every factor class that reaches AAL 2, strongest first; 15 minutes')
  t.equal(weak.challenge?.status, 401)
  t.equal(weak.message, RECOVERY_MESSAGE)
  t.same(weak.reasons.map(r => [r.policy, r.outcome]), [['account-recovery-channels', 'step_up']], 'only the recovery policy fires')
  t.match(weak.session, { aal: 1, authAge: 60 })
  t.same(weak.reportOnly, [])
  t.same(Object.keys(weak).filter(k => k !== 'enroll').sort(),
    ['challenge', 'decision', 'decisionId', 'message', 'policyRevision', 'reasons', 'reportOnly', 'required', 'session'])

  const [c] = await parseChallenges(401, weak.challenge!.wwwAuthenticate!)
  t.equal(c?.scheme, 'bearer')
  t.equal(c?.parameters.error, 'insufficient_user_authentication')
  t.equal(c?.parameters.acr_values, AAL2)
  t.equal(c?.parameters.max_age, '900')
  t.equal(c?.parameters.error_description, RECOVERY_MESSAGE)

  t.test('required.factors are limited to the enrolled ones, strongest first', async t => {
    const enrolled = await decide(app, {
      action: 'account.email.change',
      subject: { id: 'recover-1', enrolledFactors: ['sms', 'password', 'totp'] },
      claims: { sub: 'recover-1', amr: ['pwd'], auth_time: NOW_MS / 1000 - 60 },
      device
    })
    t.equal(enrolled.decision, 'step_up')
    t.same(enrolled.required?.factors, ['totp', 'sms'])
  })

  t.test('only phishing-resistant factors enrolled: the phishing-resistant acr values', async t => {
    const phr = await decide(app, {
      action: 'account.email.change',
      subject: { id: 'recover-1', enrolledFactors: ['passkey'] },
      claims: { sub: 'recover-1', amr: ['pwd'], auth_time: NOW_MS / 1000 - 60 },
      device
    })
    t.same(phr.required?.factors, ['passkey'])
    t.same(phr.required?.acrValues, ['phr', `${AAL2}?phishing_resistant=true`])
    const [c] = await parseChallenges(401, phr.challenge!.wwwAuthenticate!)
    t.equal(c?.parameters.acr_values, `phr ${AAL2}?phishing_resistant=true`)
  })
})

t.test('session freshness from the claims', async t => {
  const device = { fingerprint: 'fresh-laptop' }
  const recovery = (subject: string, claims: Record<string, unknown>): Record<string, unknown> =>
    ({ action: 'account.email.change', subject: { id: subject }, claims: { sub: subject, amr: ['pwd', 'otp'], ...claims }, device })
  const su = await decide(app, recovery('fresh-1', { su: true, iat: NOW_MS / 1000 }))
  t.equal(su.decision, 'step_up', 'su: true without auth_time is not fresh: iat is no authentication time')
  t.notOk('authAge' in su.session)

  const noAuthTime = await decide(app, recovery('fresh-2', { iat: NOW_MS / 1000 }))
  t.equal(noAuthTime.decision, 'step_up', 'no auth_time is never fresh')
  t.match(noAuthTime.reasons.find(r => r.policy === 'account-recovery-channels'), { outcome: 'step_up', unmet: ['freshness'] })

  const future = await decide(app, recovery('fresh-3', { auth_time: NOW_MS / 1000 + 120 }))
  t.equal(future.decision, 'step_up', 'an auth_time further in the future than the skew is not fresh')

  const withinSkew = await decide(app, recovery('fresh-4', { auth_time: NOW_MS / 1000 - 900 - 30 }))
  t.equal(withinSkew.decision, 'allow', 'maxAge + clock skew is still fresh')
  const stale = await decide(app, recovery('fresh-5', { auth_time: NOW_MS / 1000 - 900 - 31 }))
  t.equal(stale.decision, 'step_up', 'one second later it is not')
})

t.test('allow: nothing guards the action', async t => {
  const body = await decide(app, { action: 'profile.read', ...session('reader-1', ['pwd']) })
  t.equal(body.decision, 'allow')
  t.match(body.decisionId, UUIDV7)
  t.same(body.reasons, [])
  t.same(body.reportOnly, [])
  t.notOk('required' in body)
  t.notOk('challenge' in body)
})

t.test('a report-only policy is listed in reportOnly and does not change the decision', async t => {
  const body = await decide(app, { action: 'admin.roles.grant', ...session('admin-1', ['pwd']) })
  t.equal(body.decision, 'allow')
  t.same(body.reportOnly, [{ policy: 'admin-role-grants', decision: 'step_up', trigger: 'always' }])
  t.notOk(body.reasons.some(r => r.policy === 'admin-role-grants'), 'not among the enforced reasons')
})

t.test('deny by policy: status 403 and no header', async t => {
  const body = await decide(app, { action: 'profile.read', ...session('reader-2', ['pwd', 'hwk']), ip: '198.51.100.7' })
  t.equal(body.decision, 'deny')
  t.same(body.challenge, { status: 403 }, 'no WWW-Authenticate for a policy deny')
  t.equal(body.message, 'Requests from this network are blocked.')
  t.match(body.reasons.find(r => r.policy === 'threat-list'), { trigger: 'ipList', outcome: 'deny' })
  t.notOk('required' in body)
})

t.test('deny for an unreachable requirement: 403 unmet_authentication_requirements and enroll', async t => {
  const body = await decide(app, {
    action: 'payments.payout',
    subject: { id: 'payer-3', enrolledFactors: ['totp', 'sms'] },
    claims: { sub: 'payer-3', amr: ['pwd'], auth_time: NOW_MS / 1000 },
    context: { amount: 2500 }
  })
  t.equal(body.decision, 'deny')
  t.same(body.enroll, ['security_key', 'smart_card'])
  t.equal(body.required?.aal, 3)
  t.equal(body.challenge?.status, 403)
  const [c] = await parseChallenges(403, body.challenge!.wwwAuthenticate!)
  t.equal(c?.scheme, 'bearer')
  t.equal(c?.parameters.error, 'unmet_authentication_requirements', 'a distinct code so the client does not loop')
  t.match(c?.parameters.error_description, RFC6750_TEXT)
  t.type(body.message, 'string')
})

t.test('messages with quotes, a backslash and non-ASCII text', async t => {
  const { app: fixtures } = await buildTestApp({ geo, policiesDir: FIXTURE_POLICIES })
  t.teardown(() => fixtures.close())

  const cases: Array<{ action: string, message: string, aal: number, maxAge: string, acr: string }> = [
    { action: 'fixture.quoted', message: 'Confirmez le "virement" vers C:\\Trésorerie — merci ✓', aal: 2, maxAge: '600', acr: AAL2 },
    { action: 'fixture.japanese', message: 'セキュリティキーで本人確認を行ってください。', aal: 3, maxAge: '300', acr: `phrh ${AAL3}` }
  ]
  for (const c of cases) {
    t.test(c.action, async t => {
      const body = await decide(fixtures, { action: c.action, ...session('intl-1', ['pwd']) })
      t.equal(body.decision, 'step_up')
      t.equal(body.message, c.message, 'the JSON message keeps the full original text')
      const header = body.challenge!.wwwAuthenticate!
      t.match(header, /^[\x20-\x7e]+$/, 'the header value is printable ASCII')
      const raw = rawParam(header, 'error_description')
      t.type(raw, 'string', 'error_description is a quoted string')
      t.match(raw, RFC6750_TEXT, 'raw error_description: printable ASCII without " or \\')
      t.notOk(raw!.includes('\\'), 'no escapes in the header')

      const challenges = await parseChallenges(401, header)
      t.equal(challenges.length, 1, 'the header still parses as one challenge')
      const [parsed] = challenges
      t.equal(parsed?.scheme, 'bearer')
      t.equal(parsed?.parameters.error, 'insufficient_user_authentication')
      t.equal(parsed?.parameters.acr_values, c.acr)
      t.equal(parsed?.parameters.max_age, c.maxAge)
      const description = parsed?.parameters.error_description
      t.type(description, 'string')
      t.ok(description!.trim().length > 0, 'a non-empty description')
      t.match(description, RFC6750_TEXT, 'parsed error_description: printable ASCII without " or \\')
      t.equal(description, raw, 'what the client reads is what was sent')
    })
  }

  t.test('what can be kept of the text is kept', async t => {
    const body = await decide(fixtures, { action: 'fixture.quoted', ...session('intl-2', ['pwd']) })
    const description = rawParam(body.challenge!.wwwAuthenticate!, 'error_description')
    t.match(description, /virement/)
    t.match(description, /Confirmez le/)
  })

  t.test('the unmet challenge (403) is printable ASCII too', async t => {
    const body = await decide(fixtures, {
      action: 'fixture.unmet',
      subject: { id: 'intl-3', enrolledFactors: ['passkey'] },
      claims: { sub: 'intl-3', amr: ['pwd'], auth_time: NOW_MS / 1000 }
    })
    t.equal(body.decision, 'deny')
    t.same(body.enroll, ['security_key'])
    const [c] = await parseChallenges(403, body.challenge!.wwwAuthenticate!)
    t.equal(c?.parameters.error, 'unmet_authentication_requirements')
    t.match(c?.parameters.error_description, RFC6750_TEXT)
  })
})

t.test('policyRevision: the revision of the set that decided, in every answer; no trace over HTTP', async t => {
  const allow = await decide(app, { action: 'profile.read', ...session('rev-1', ['pwd']) })
  const stepUp = await decide(app, { action: 'payments.payout', ...session('rev-2', ['pwd']), context: { amount: 2500 } })
  const deny = await decide(app, { action: 'profile.read', ...session('rev-3', ['pwd']), ip: '198.51.100.7' }) as DecideAnswer & { policyRevision: string }
  const revision = (allow as DecideAnswer & { policyRevision?: string }).policyRevision
  t.match(revision, /^sha256:[0-9a-f]{16}$/, 'sha256: and 16 hex digits')
  t.equal((stepUp as DecideAnswer & { policyRevision?: string }).policyRevision, revision, 'the same set, the same revision')
  t.equal(deny.policyRevision, revision)
  for (const body of [allow, stepUp, deny]) t.notOk('trace' in body, 'the trace is not part of the answer')

  const { app: other } = await buildTestApp({ geo, policiesDir: FIXTURE_POLICIES })
  t.teardown(() => other.close())
  const fromOther = await decide(other, { action: 'fixture.quoted', ...session('rev-4', ['pwd']) }) as DecideAnswer & { policyRevision: string }
  t.match(fromOther.policyRevision, /^sha256:[0-9a-f]{16}$/)
  t.not(fromOther.policyRevision, revision, 'other sources, another revision')
})

t.test('the revision in the answers is the one /readyz and GET /policies show', async t => {
  const { app: admin } = await buildTestApp({ geo, adminApiKeys: ['admin-key-1234567890'] })
  t.teardown(() => admin.close())
  const body = await decide(admin, { action: 'profile.read', ...session('rev-5', ['pwd']) }) as DecideAnswer & { policyRevision: string }
  const ready = await admin.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.json<{ policies: { revision: string } }>().policies.revision, body.policyRevision, '/readyz')
  const listed = await admin.inject({ method: 'GET', url: '/policies', headers: { authorization: 'Bearer admin-key-1234567890' } })
  t.equal(listed.statusCode, 200)
  t.equal(listed.json<{ revision: string }>().revision, body.policyRevision, 'GET /policies')
})

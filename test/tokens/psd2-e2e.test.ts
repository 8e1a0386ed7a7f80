// PSD2 dynamic linking end to end, with a real OpenID Provider (oidc-provider) issuing RFC 9396
// tokens: a payment without SCA steps up naming the payment (`required.authorizationDetails`),
// the user authorizes exactly that payment at the provider, the new token pays it once, and
// nothing else pays it: not the same token again, not a token for another amount or payee, not
// raw claims. Through POST /decide and the AuthZEN evaluation endpoint.
import t from 'tap'
import { decodeJwt } from 'jose'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from './app.js'
import { AAL2, Browser, OpenIdProvider, RESOURCE, type PaymentInitiation } from './openid-provider.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const op = await new OpenIdProvider().start()
t.teardown(() => op.stop())

const KEYS = { bank: 'bank-backend-key-0123456789', legacy: 'legacy-backend-key-012345678' }
const pdp = await tokenApp({
  geo,
  config: { apiKeys: [`bank:${KEYS.bank}`, `legacy:${KEYS.legacy}`] },
  files: {
    'p.yaml': `
issuers:
  - issuer: ${op.issuer}
    audience: [${RESOURCE}]
callers:
  - name: bank
    explain: true
  - name: legacy
    trustClaims: true
    explain: true
policies:
  - id: payment-sca
    actions: [payments.initiate]
    require: { aal: 2, bind: transaction }
    message: Confirm this payment.
  - id: transfer-sca
    actions: [payments.transfer]
    require: { aal: 2, bind: transaction }
    message: Confirm this transfer.
    exemptions: { lowValue: true, trustedBeneficiary: true }
`
  }
})
t.teardown(async () => { await pdp.app.close(); cleanup(pdp.dir) })

interface Transaction { amount: string, currency: string, payee: { name: string, iban: string }, trustPayee?: boolean }
interface Answer {
  decision: string
  required?: { aal: number, maxAge: number, acrValues: string[], authorizationDetails?: PaymentInitiation[] }
  challenge?: { status: number, wwwAuthenticate?: string }
  reasons: Array<{ policy?: string, trigger: string, outcome?: string, unmet?: string[], detail?: string, exemption?: string }>
  decisionId: string
}

const IBAN = 'DE89 3704 0044 0532 0130 00'
const tx = (amount: string, name = 'ACME GmbH', iban = IBAN): Transaction => ({ amount, currency: 'EUR', payee: { name, iban } })
const linked = (t: Transaction): PaymentInitiation =>
  ({ type: 'payment_initiation', instructedAmount: { currency: t.currency, amount: t.amount }, creditorName: t.payee.name, creditorAccount: { iban: t.payee.iban.replace(/\s+/g, '').toUpperCase() } })

async function decide (body: Record<string, unknown>, key = KEYS.bank): Promise<Answer> {
  const res = await pdp.app.inject({ method: 'POST', url: '/decide', headers: { authorization: `Bearer ${key}` }, payload: body })
  if (res.statusCode !== 200) throw new Error(`/decide answered ${res.statusCode}: ${res.body}`)
  return res.json() as Answer
}
const pay = (token: string, transaction: Transaction): Promise<Answer> => decide({ action: 'payments.initiate', token, context: { transaction } })
const unmetOf = (a: Answer): string[] => a.reasons.find(r => r.policy === 'payment-sca')?.unmet ?? []
/** The RFC 9470 parameters of a challenge. */
const challengeParams = (a: Answer): Record<string, string> =>
  Object.fromEntries([...(a.challenge?.wwwAuthenticate ?? '').matchAll(/([a-z_]+)="?([^",]*)"?/g)].map(m => [m[1]!, m[2]!]))

/** A user of the bank: a browser, logged in with a password only (no SCA yet). */
async function customer (id: string): Promise<{ browser: Browser, weak: string }> {
  const browser = new Browser()
  return { browser, weak: await browser.authorize(op.issuer, { login_hint: id }) }
}

/** Step-up answer -> authorization at the provider with exactly the asked authorization_details -> token. */
async function authorize (browser: Browser, user: string, answer: Answer): Promise<string> {
  const params = challengeParams(answer)
  return browser.authorizePayments(op.issuer, answer.required!.authorizationDetails!, { login_hint: user, acr_values: params.acr_values!, max_age: params.max_age! })
}

t.test('no SCA -> step_up naming the payment -> authorization at the provider -> allow, once', async t => {
  const user = 'alice'
  const { browser, weak } = await customer(user)
  const payment = tx('12.50')

  const first = await pay(weak, payment)
  t.equal(first.decision, 'step_up')
  t.equal(first.required?.aal, 2)
  t.equal(first.required?.maxAge, 300, 'maxAge defaults to 5m when bind is set')
  t.same(first.required?.authorizationDetails, [linked(payment)], 'the payment, with the IBAN normalized')
  t.equal(first.challenge?.status, 401)
  t.match(first.challenge?.wwwAuthenticate, /^Bearer error="insufficient_user_authentication", error_description="Confirm this payment\.", acr_values="[^"]+", max_age=300$/, 'the header stays RFC 9470')
  t.ok(unmetOf(first).includes('authorization_details'), `unmet: ${unmetOf(first).join(', ')}`)

  const token = await authorize(browser, user, first)
  const claims = decodeJwt(token)
  t.same(claims.authorization_details, first.required?.authorizationDetails, 'the token carries exactly what was asked')
  t.equal(claims.acr, AAL2)
  t.same(op.consents.at(-1), first.required?.authorizationDetails, 'the user approved that payment')

  const retry = await pay(token, payment)
  t.equal(retry.decision, 'allow', JSON.stringify(retry.reasons))

  const again = await pay(token, payment)
  t.equal(again.decision, 'step_up', 'the same SCA does not pay twice')
  t.ok(unmetOf(again).includes('consumed'), `unmet: ${unmetOf(again).join(', ')}`)
  t.same(again.required?.authorizationDetails, [linked(payment)])
})

t.test('a token for another amount or another payee does not pay this payment', async t => {
  const payment = tx('250.00', 'Globex Corp', 'FR14 2004 1010 0505 0001 3M02 606')
  const cases: Array<[string, Transaction]> = [
    ['another amount', { ...payment, amount: '2500.00' }],
    ['another payee name', { ...payment, payee: { ...payment.payee, name: 'Globex Holding' } }],
    ['another IBAN', { ...payment, payee: { ...payment.payee, iban: IBAN } }],
    ['another currency', { ...payment, currency: 'USD' }]
  ]
  // One user per case: a failed attempt must not lock the next case out.
  for (const [i, [name, other]] of cases.entries()) {
    const user = `bob-${i}`
    const { browser, weak } = await customer(user)
    const asked = await pay(weak, payment)
    t.equal(asked.decision, 'step_up', `${name}: asked`)
    const token = await browser.authorizePayments(op.issuer, [linked(other)], { login_hint: user, acr_values: AAL2 })
    const answer = await pay(token, payment)
    t.equal(answer.decision, 'step_up', name)
    t.ok(unmetOf(answer).includes('authorization_details'), `${name}: unmet ${unmetOf(answer).join(', ')}`)
    t.same(answer.required?.authorizationDetails, [linked(payment)], `${name}: still asks for this payment`)
  }
  // A strong token with no payment at all: AAL 2, fresh, and still not linked to anything.
  const { browser } = await customer('bob-strong')
  const strong = await browser.authorize(op.issuer, { login_hint: 'bob-strong', acr_values: AAL2, prompt: 'login' })
  t.same(decodeJwt(strong).amr, ['pwd', 'otp'])
  const unlinked = await pay(strong, payment)
  t.equal(unlinked.decision, 'step_up', 'AAL 2 without the payment')
  t.same(unmetOf(unlinked), ['authorization_details'], 'only the link is missing')
})

t.test('the payment matches as the design says: amounts numerically, names and IBANs normalized', async t => {
  const user = 'carol'
  const { browser } = await customer(user)
  const payment = tx('7.10', 'ACME  GmbH ', 'de89370400440532013000')
  const token = await browser.authorizePayments(op.issuer, [{ type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '7.1' }, creditorName: 'ACME GmbH', creditorAccount: { iban: 'DE89370400440532013000' } }], { login_hint: user, acr_values: AAL2 })
  const answer = await pay(token, payment)
  t.equal(answer.decision, 'allow', JSON.stringify(answer.reasons))
})

t.test('raw claims carrying authorization_details never allow', async t => {
  const payment = tx('12.50')
  const now = Math.floor(Date.now() / 1000)
  const claims = { sub: 'mallory', acr: AAL2, amr: ['pwd', 'otp'], auth_time: now - 5, authorization_details: [linked(payment)] }
  const answer = await decide({ action: 'payments.initiate', claims, context: { transaction: payment } }, KEYS.legacy)
  t.not(answer.decision, 'allow')
  t.equal(answer.decision, 'step_up')
  t.ok(unmetOf(answer).includes('verified_token'), `unmet: ${unmetOf(answer).join(', ')}`)
  for (let i = 0; i < 3; i++) {
    const again = await decide({ action: 'payments.initiate', claims: { ...claims, auth_time: now - i }, context: { transaction: payment } }, KEYS.legacy)
    t.not(again.decision, 'allow', `attempt ${i}`)
  }
  const other = await pdp.app.inject({ method: 'POST', url: '/decide', headers: { authorization: `Bearer ${KEYS.bank}` }, payload: { action: 'payments.initiate', claims, context: { transaction: payment } } })
  t.equal(other.statusCode, 400, 'a caller that may not send raw claims is refused')
  t.equal(other.json().error, 'claims_not_accepted')
})

t.test('a bound policy without a transaction never allows', async t => {
  const user = 'dave'
  const { browser } = await customer(user)
  const token = await browser.authorizePayments(op.issuer, [linked(tx('5.00'))], { login_hint: user, acr_values: AAL2 })
  const res = await pdp.app.inject({ method: 'POST', url: '/decide', headers: { authorization: `Bearer ${KEYS.bank}` }, payload: { action: 'payments.initiate', token } })
  t.not(res.statusCode === 200 && res.json().decision === 'allow', true, res.body)
})

t.test('AuthZEN: the step-up names the payment in context.step_up; the linked token permits once', async t => {
  const user = 'erin'
  const { browser, weak } = await customer(user)
  const payment = tx('42.00', 'Initech AG', 'CH93 0076 2011 6238 5295 7')
  const evaluate = async (token: string): Promise<{ decision: boolean, context: { step_up?: { required: Answer['required'], challenge: Answer['challenge'] } } }> => {
    const res = await pdp.app.inject({
      method: 'POST',
      url: '/access/v1/evaluation',
      headers: { authorization: `Bearer ${KEYS.bank}` },
      payload: { subject: { type: 'user', id: user, properties: { token } }, action: { name: 'payments.initiate' }, resource: { type: 'payments', id: 'pi-1' }, context: { transaction: payment } }
    })
    t.equal(res.statusCode, 200, res.body)
    return res.json()
  }
  const first = await evaluate(weak)
  t.equal(first.decision, false)
  t.same(first.context.step_up?.required?.authorizationDetails, [linked(payment)])
  const token = await authorize(browser, user, { decision: 'step_up', decisionId: '', reasons: [], required: first.context.step_up!.required, challenge: first.context.step_up!.challenge })
  t.equal((await evaluate(token)).decision, true, 'the linked token permits')
  t.equal((await evaluate(token)).decision, false, 'and only once')
})

t.test('trusted beneficiaries: a payee joins the list only through an SCA-authenticated payment with trustPayee', async t => {
  const user = 'frank'
  const { browser, weak } = await customer(user)
  const transfer = (token: string, transaction: Transaction): Promise<Answer> => decide({ action: 'payments.transfer', token, context: { transaction } })
  const rent = tx('950.00', 'Landlord Ltd', 'GB82 WEST 1234 5698 7654 32')

  // A low-value payment asking to trust the payee is exempted, and does not make the payee trusted.
  const small = await transfer(weak, { ...tx('10.00', 'Landlord Ltd', 'GB82 WEST 1234 5698 7654 32'), trustPayee: true })
  t.equal(small.decision, 'allow')
  t.equal(small.reasons.find(r => r.policy === 'transfer-sca')?.exemption, 'lowValue')
  const notYet = await transfer(weak, rent)
  t.equal(notYet.decision, 'step_up', 'an exempted payment adds nobody to the trusted list')

  // The rent, SCA-confirmed with trustPayee: the payee joins the list.
  const token = await authorize(browser, user, notYet)
  const confirmed = await transfer(token, { ...rent, trustPayee: true })
  t.equal(confirmed.decision, 'allow', JSON.stringify(confirmed.reasons))
  t.equal(confirmed.reasons.find(r => r.policy === 'transfer-sca')?.exemption, undefined, 'paid by the SCA, not an exemption')

  // Next month's rent to the same payee, with the password session: exempted as a trusted beneficiary.
  const next = await transfer(weak, { ...rent, amount: '975.00', payee: { name: 'Landlord Ltd', iban: 'gb82west12345698765432' } })
  t.equal(next.decision, 'allow', JSON.stringify(next.reasons))
  t.equal(next.reasons.find(r => r.policy === 'transfer-sca')?.exemption, 'trustedBeneficiary')
  // The same amount to another payee is not.
  const other = await transfer(weak, tx('975.00', 'Landlord Ltd', IBAN))
  t.equal(other.decision, 'step_up', 'trust follows the IBAN')
})

t.test('lockout: five reported failed step-ups lock the payment step-up (temporarily_locked) for the window', async t => {
  const user = 'gina'
  const { weak } = await customer(user)
  const payment = tx('300.00')
  for (let i = 0; i < 5; i++) {
    const answer = await pay(weak, payment)
    t.equal(answer.decision, 'step_up', `attempt ${i + 1} asks`)
    const res = await pdp.app.inject({ method: 'POST', url: '/events', headers: { authorization: `Bearer ${KEYS.bank}` }, payload: { decisionId: answer.decisionId, event: 'auth.step_up_failed', detail: 'wrong one-time code' } })
    t.equal(res.statusCode, 200, res.body)
  }
  const locked = await pay(weak, payment)
  t.equal(locked.decision, 'deny')
  t.equal(locked.challenge?.status, 403)
  t.match(locked.challenge?.wwwAuthenticate, /^Bearer error="temporarily_locked", error_description="[^"]+"$/)
  t.ok(locked.reasons.some(r => r.trigger === 'lockout'), JSON.stringify(locked.reasons))
  t.equal(locked.required, undefined, 'no payment to authorize while locked')

  pdp.clock.offsetMs += 16 * 60_000 // the window (15 min) has passed
  t.teardown(() => { pdp.clock.offsetMs -= 16 * 60_000 })
  const later = await pay(weak, payment)
  t.not(later.decision, 'deny', 'unlocked after the window')
})

t.test('concurrent retries: one SCA pays once, five low-value places are taken by five payments', async t => {
  const user = 'hana'
  const { browser, weak } = await customer(user)
  const payment = tx('640.00', 'Furniture House', 'DE89370400440532013000')
  const token = await authorize(browser, user, await pay(weak, payment))
  const answers = await Promise.all(Array.from({ length: 8 }, () => pay(token, payment)))
  t.equal(answers.filter(a => a.decision === 'allow').length, 1, 'exactly one of eight concurrent retries is allowed')
  for (const a of answers.filter(a => a.decision !== 'allow')) t.same(unmetOf(a), ['consumed'])

  const { weak: other } = await customer('ivan')
  const small = await Promise.all(Array.from({ length: 8 }, (_, i) => decide({ action: 'payments.transfer', token: other, context: { transaction: tx(`5.0${i}`, 'Kiosk') } })))
  t.equal(small.filter(a => a.decision === 'allow').length, 5, 'five exempted, whatever the interleaving')
})

t.test('the SCA must be recent: 5 minutes by default on a bound policy', async t => {
  const user = 'jo'
  const { browser, weak } = await customer(user)
  const payment = tx('77.00')
  const token = await authorize(browser, user, await pay(weak, payment))
  pdp.clock.offsetMs += 6 * 60_000
  t.teardown(() => { pdp.clock.offsetMs -= 6 * 60_000 })
  const late = await pay(token, payment)
  t.equal(late.decision, 'step_up')
  t.same(unmetOf(late), ['freshness'], 'linked, but too old')
})

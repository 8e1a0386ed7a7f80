// A real OpenID Provider (oidc-provider) issuing RFC 9396 tokens for PSD2 payments: an
// authorization request with `authorization_details` of type payment_initiation, a fresh login
// with a second factor, and a JWT access token carrying the payment beside acr, amr, auth_time.
// The service's own verification accepts it and hands the engine the payment as a claim.
import t from 'tap'
import { decodeJwt } from 'jose'
import { openGeoLookup } from '../../src/signals/geo.js'
import { gatewayConfigOf } from '../../src/policy/gateway-config.js'
import { resolveIdentity } from '../../src/tokens/identity.js'
import { cleanup, tokenApp } from './app.js'
import { AAL2, Browser, OpenIdProvider, RESOURCE, type PaymentInitiation } from './openid-provider.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const op = await new OpenIdProvider().start()
t.teardown(() => op.stop())

const payment = (amount: string, creditorName = 'ACME GmbH', iban = 'DE89370400440532013000'): PaymentInitiation =>
  ({ type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount }, creditorName, creditorAccount: { iban } })

// A policy that reads the verified claim: it fires only when the token carries this payment.
const pdp = await tokenApp({
  geo,
  files: {
    'p.yaml': `
issuers:
  - issuer: ${op.issuer}
    audience: [${RESOURCE}]
policies:
  - id: the-linked-payment
    actions: [payments.probe]
    when:
      - condition: has(claims.authorization_details) && claims.authorization_details.exists(d, d.type == "payment_initiation" && d.instructedAmount.amount == "12.50" && d.creditorAccount.iban == "DE89370400440532013000")
    effect: deny
    message: This token pays 12.50 EUR to ACME GmbH.
`
  }
})
t.teardown(async () => { await pdp.app.close(); cleanup(pdp.dir) })

t.test('the provider issues a JWT access token carrying the payment, acr, amr and auth_time', async t => {
  const browser = new Browser()
  const before = Math.floor(Date.now() / 1000)
  const token = await browser.authorizePayments(op.issuer, [payment('12.50')])
  const claims = decodeJwt(token)
  t.same(claims.authorization_details, [payment('12.50')], 'exactly the requested payment')
  t.equal(claims.acr, AAL2)
  t.same(claims.amr, ['pwd', 'otp'], 'a payment is authenticated with a second factor')
  t.type(claims.auth_time, 'number')
  t.ok((claims.auth_time as number) >= before, 'a fresh login for the payment')
  t.same(op.consents.at(-1), [payment('12.50')], 'the user approved the payment shown')
})

t.test('each payment is a new authentication, even within a session', async t => {
  const browser = new Browser()
  const plain = await browser.authorize(op.issuer, {})
  t.equal(decodeJwt(plain).authorization_details, undefined, 'no payment asked, none carried')
  t.same(decodeJwt(plain).amr, ['pwd'])
  const logins = op.logins.length
  const paid = decodeJwt(await browser.authorizePayments(op.issuer, [payment('99.00', 'Globex Corp')]))
  t.equal(op.logins.length, logins + 1, 'the payment asked the user to log in again')
  t.same(paid.amr, ['pwd', 'otp'])
  t.same(paid.authorization_details, [payment('99.00', 'Globex Corp')], 'only this request\'s payment, not earlier consents')
})

t.test('the provider refuses a malformed payment_initiation', async t => {
  const browser = new Browser()
  await t.rejects(browser.authorizePayments(op.issuer, [{ ...payment('12.50'), instructedAmount: { currency: 'EUR', amount: 12.5 } }]), /invalid_authorization_details/)
  await t.rejects(browser.authorizePayments(op.issuer, [{ ...payment('12.50'), creditorAccount: {} }]), /invalid_authorization_details/)
  await t.rejects(browser.authorizePayments(op.issuer, [{ type: 'account_information' }]), /invalid_authorization_details/)
})

t.test('the service verifies the token and the verified claims hold authorization_details', async t => {
  const browser = new Browser()
  const token = await browser.authorizePayments(op.issuer, [payment('12.50')])
  const identity = await resolveIdentity({ token: { value: token, field: 'token', scheme: 'Bearer' } }, gatewayConfigOf(pdp.policies.current), undefined, pdp.verifier, 30)
  t.equal(identity.kind, 'session')
  if (identity.kind !== 'session') return
  t.equal(identity.issuer?.issuer, op.issuer)
  t.equal(identity.claims.sub, 'user-1')
  t.same(identity.claims.authorization_details, [payment('12.50')])

  // Through POST /decide: the engine reads the verified payment.
  const linked = await pdp.app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.probe', token } })
  t.equal(linked.statusCode, 200, linked.body)
  t.equal(linked.json().decision, 'deny', 'the policy saw the payment in the verified claims')
  t.equal(linked.json().reasons[0].policy, 'the-linked-payment')
  const other = await browser.authorizePayments(op.issuer, [payment('13.00')])
  const unlinked = await pdp.app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.probe', token: other } })
  t.equal(unlinked.json().decision, 'allow', 'another amount does not match')
})

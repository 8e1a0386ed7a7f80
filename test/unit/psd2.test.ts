// The pure PSD2 rules (src/engine/psd2.ts): amounts compared exactly, the link between a token's
// authorization_details and the payment, EUR conversion rounding up.
import fc from 'fast-check'
import t from 'tap'
import { canonicalAmount, eurCents, linksTo, parseAmount } from '../../src/engine/psd2.js'
import { parseTransaction } from '../../src/contract/transaction.js'
import { recordRequest } from '../../src/audit/audit-log.js'

t.test('amounts: a decimal string and its canonical form are the same amount, exactly', async t => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 99_999_999_999 }), fc.integer({ min: 0, max: 9999 }), (whole, frac) => {
    const scaled = parseAmount(`${whole}.${String(frac).padStart(4, '0')}`)
    if (scaled !== whole * 10_000 + frac) throw new Error(`${whole}.${frac} parsed as ${scaled}`)
    const canonical = canonicalAmount(scaled)
    if (parseAmount(canonical) !== scaled || /\.\d*0$/.test(canonical)) throw new Error(`canonical ${canonical} of ${scaled}`)
  }))
  t.equal(parseAmount('12.5'), parseAmount('12.50'))
  t.equal(canonicalAmount(parseAmount('12.50')!), '12.5')
  t.equal(canonicalAmount(parseAmount('7')!), '7')
  for (const bad of ['', '1e3', '-1', '01', '1.', '.5', '1.00001', '123456789012', ' 1', '1,00', 12 as unknown as string]) t.equal(parseAmount(bad), undefined, `refused: ${JSON.stringify(bad)}`)
})

const tx = parseTransaction({ amount: '420.00', currency: 'EUR', payee: { name: 'ACME  GmbH ', iban: 'de89 3704 0044 0532 0130 00' } }, undefined, 'u1')
const entry = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '420' }, creditorName: 'ACME GmbH', creditorAccount: { iban: 'DE89370400440532013000' }, ...over
})

t.test('linksTo: exactly this amount, currency, payee name and IBAN', async t => {
  t.ok(linksTo({ authorization_details: [entry()] }, tx))
  t.ok(linksTo({ authorization_details: [{ type: 'account_information' }, entry({ creditorAccount: { iban: 'de89 3704 0044 0532 0130 00' } })] }, tx), 'any entry, IBAN normalized')
  t.ok(linksTo({ authorization_details: [entry({ instructedAmount: { currency: 'EUR', amount: 420 } })] }, tx), 'a JSON number amount compares numerically')
  t.notOk(linksTo({}, tx), 'no authorization_details')
  t.notOk(linksTo({ authorization_details: entry() }, tx), 'not a list')
  t.notOk(linksTo({ authorization_details: [entry({ type: 'payment' })] }, tx), 'another type')
  t.notOk(linksTo({ authorization_details: [entry({ instructedAmount: { currency: 'EUR', amount: '420.0001' } })] }, tx), 'a ten-thousandth more')
  t.notOk(linksTo({ authorization_details: [entry({ instructedAmount: { currency: 'eur', amount: '420' } })] }, tx), 'currency is exact')
  t.notOk(linksTo({ authorization_details: [entry({ creditorName: 'acme gmbh' })] }, tx), 'the name is compared with its case')
  t.notOk(linksTo({ authorization_details: [entry({ creditorAccount: { iban: 'FR1420041010050500013M02606' } })] }, tx), 'another account')
  t.notOk(linksTo({ authorization_details: [entry({ creditorAccount: 'DE89370400440532013000' })] }, tx), 'a malformed account')
  t.notOk(linksTo({ authorization_details: [null, 'x', entry({ instructedAmount: null })] }, tx), 'junk entries')
})

t.test('transaction digests: the same payment however spelled; another payee or subject differs', async t => {
  const same = parseTransaction({ amount: '420', currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89370400440532013000' } }, undefined, 'u1')
  t.equal(same.hash, tx.hash)
  t.equal(same.payeeId, tx.payeeId)
  t.not(parseTransaction({ amount: '420', currency: 'EUR', payee: { name: 'ACME AG', iban: 'DE89370400440532013000' } }, undefined, 'u1').hash, tx.hash)
  t.not(parseTransaction({ amount: '420', currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89370400440532013000' } }, undefined, 'u2').payeeId, tx.payeeId, 'payee ids are salted per subject')
  t.not(parseTransaction({ amount: '420', currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89370400440532013000' } }, 'acme', 'u1').payeeId, tx.payeeId, 'and per tenant')
})

t.test('EUR cents: rounded up; no conversion, no figure', async t => {
  t.equal(eurCents(tx, {}), 42000)
  const usd = parseTransaction({ amount: '0.011', currency: 'USD', payee: { name: 'A', iban: 'DE89370400440532013000' } }, undefined, 'u1')
  t.equal(eurCents(usd, { USD: 0.9 }), 1, 'a fraction of a cent counts as a cent')
  t.equal(eurCents(usd, {}), undefined)
})

t.test('EUR cents: binary noise never adds a cent', async t => {
  const thirty = parseTransaction({ amount: '30.00', currency: 'CHF', payee: { name: 'A', iban: 'DE89370400440532013000' } }, undefined, 'u1')
  t.equal(eurCents(thirty, { CHF: 1.1 }), 3300)
  t.equal(eurCents(thirty, { CHF: 0.7 }), 2100)
})

t.test('audit: redacting context.transaction also drops the token\'s authorization_details', async t => {
  const request = { action: 'payments.initiate', tenant: undefined, application: undefined, subjectId: 'u1', enrolledFactors: undefined, claims: { sub: 'u1', authorization_details: [entry()] }, ip: undefined, deviceId: undefined, resource: undefined, context: { transaction: { amount: '420.00' } }, transaction: tx, tokenVerified: true }
  const kept = recordRequest(request)
  t.ok(kept.transaction !== undefined && kept.claims.authorization_details !== undefined && kept.tokenVerified === true, 'kept by default (a replay needs them)')
  const redacted = recordRequest(request, ['transaction'])
  t.equal(redacted.transaction, undefined)
  t.equal(redacted.claims.authorization_details, undefined)
  t.same(redacted.context, {})
  t.same(redacted.redacted, ['transaction'])
})

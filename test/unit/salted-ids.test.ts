// The salted ids the history store keeps (src/contract): device ids and payee ids. Their values
// are pinned: a change would forget every known device and every trusted payee in a live store.
import t from 'tap'
import { hashDevice } from '../../src/contract/normalize.js'
import { parseTransaction } from '../../src/contract/transaction.js'

const payment = { amount: '420.00', currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89370400440532013000' } }

t.test('device ids: the same digest as ever, without a tenant, with one, and with an empty one', async t => {
  t.equal(hashDevice('phone-1', undefined, 'u1'), '1mchAy3sCGGaMyuNXZ1AgR')
  t.equal(hashDevice('phone-1', 'acme', 'u1'), 'tI9oDjm4VSu6Gedm9lgG1A')
  t.equal(hashDevice('phone-1', '', 'u1'), 'LF5YwsopS3CbAOjqSl5ufR', 'an empty tenant is not no tenant')
})

t.test('payee ids: the same digest as ever, without a tenant, with one, and with an empty one', async t => {
  t.equal(parseTransaction(payment, undefined, 'u1').payeeId, '0Q59jp5apXPB_d99qlrrbj')
  t.equal(parseTransaction(payment, 'acme', 'u1').payeeId, 'K7SItKfHqNVnj0K9j4I1uF')
  t.equal(parseTransaction(payment, '', 'u1').payeeId, '2N5CFnscSEJNebhHoVz-fw', 'an empty tenant is not no tenant')
})

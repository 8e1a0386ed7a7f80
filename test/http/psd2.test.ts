/**
 * PSD2 over HTTP: the step_up answer carries the RFC 9396 authorization_details in its JSON
 * body (the WWW-Authenticate header stays RFC 9470), failed step-ups reported through
 * POST /events lock the subject out (a replayed report counts once), and the audit record names
 * the exemption applied.
 */
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, NOW_S, postDecide } from '../helpers/app.js'
import { fileURLToPath } from 'node:url'
import type { LightMyRequestResponse } from 'fastify'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const policiesDir = fileURLToPath(new URL('../fixtures/psd2-policies', import.meta.url))

const payment = (subject: string, amount: string, claims: Record<string, unknown> = {}): Record<string, unknown> => ({
  action: 'payments.initiate',
  claims: { sub: subject, amr: ['pwd'], auth_time: NOW_S - 3600, ...claims },
  context: { transaction: { amount, currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89 3704 0044 0532 0130 00' } } }
})

t.test('step_up: authorization_details in the body, an RFC 9470 header', async t => {
  const { app } = await buildTestApp({ geo, policiesDir })
  t.teardown(() => app.close())
  const res = await postDecide(app, payment('alice', '420.00'))
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.decision, 'step_up')
  t.same(body.required.authorizationDetails, [{ type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '420.00' }, creditorName: 'ACME GmbH', creditorAccount: { iban: 'DE89370400440532013000' } }])
  t.match(body.challenge.wwwAuthenticate, /^Bearer error="insufficient_user_authentication", error_description="Confirm this payment.", acr_values="[^"]+", max_age=300$/)
  t.same(body.reasons[0].unmet, ['aal', 'freshness', 'verified_token'])
})

t.test('a malformed transaction is a 400 naming the field, and nothing is counted', async t => {
  const { app } = await buildTestApp({ geo, policiesDir })
  t.teardown(() => app.close())
  const bad = payment('bob', '10.00')
  ;(bad.context as { transaction: { payee: { iban: string } } }).transaction.payee.iban = 'DE89 3704 0044 0532 0130 01'
  const res = await postDecide(app, bad)
  t.equal(res.statusCode, 400)
  t.same(res.json(), { error: 'invalid_request', message: 'context.transaction.payee.iban: not a valid IBAN (its length, format or check digits are wrong for its country)' })
  const missing = await postDecide(app, { ...payment('bob', '10.00'), context: { transaction: { amount: '10.00', currency: 'EUR' } } })
  t.equal(missing.statusCode, 400)
  t.match(missing.json().message, /^context\.transaction/)
  // Five low-value payments still pass: the refused requests counted for nothing.
  for (let i = 0; i < 5; i++) t.equal((await postDecide(app, payment('bob', '10.00'))).json().decision, 'allow')
  t.equal((await postDecide(app, payment('bob', '10.00'))).json().decision, 'step_up')
})

t.test('five failed step-ups reported through /events lock the subject out; a replayed report counts once', async t => {
  const { app } = await buildTestApp({ geo, policiesDir })
  t.teardown(() => app.close())
  const fail = async (): Promise<string> => {
    const answer = (await postDecide(app, payment('carol', '420.00'))).json()
    t.equal(answer.decision, 'step_up')
    const res = await app.inject({ method: 'POST', url: '/events', payload: { decisionId: answer.decisionId, event: 'auth.step_up_failed' } })
    t.equal(res.statusCode, 200)
    return answer.decisionId as string
  }
  const first = await fail()
  for (let i = 0; i < 3; i++) await fail()
  const replay = await app.inject({ method: 'POST', url: '/events', payload: { decisionId: first, event: 'auth.step_up_failed' } })
  t.equal(replay.statusCode, 409, 'the same outcome cannot be reported twice')
  t.equal((await postDecide(app, payment('carol', '420.00'))).json().decision, 'step_up', 'four failures (the replay did not count): still a step-up')
  await fail()
  const locked = (await postDecide(app, payment('carol', '420.00'))).json()
  t.equal(locked.decision, 'deny')
  t.equal(locked.challenge.status, 403)
  t.match(locked.challenge.wwwAuthenticate, /^Bearer error="temporarily_locked"/)
  t.match(locked.reasons.at(-1), { trigger: 'lockout', outcome: 'deny', figures: { failures: 5, attempts: 5 } })
  t.equal((await postDecide(app, payment('dave', '420.00'))).json().decision, 'step_up', 'another subject is not locked')
})

t.test('the audit record names the exemption', async t => {
  const ADMIN = 'admin-key-0123456789abcdef0123456789'
  const { app } = await buildTestApp({ geo, policiesDir, adminApiKeys: [ADMIN] })
  t.teardown(() => app.close())
  const answer = (await postDecide(app, payment('erin', '12.00'))).json()
  t.equal(answer.decision, 'allow')
  t.equal(answer.reasons[0].exemption, 'lowValue')
  const audit = await app.inject({ method: 'GET', url: `/audit?decisionId=${answer.decisionId as string}`, headers: { authorization: `Bearer ${ADMIN}` } })
  t.equal(audit.statusCode, 200)
  t.match(audit.json(), { entries: [{ decisionId: answer.decisionId, exemption: 'lowValue', facts: { psd2: { status: 'found' } } }] })
})

t.test('AuthZEN: its free-form context gets the same transaction checks (400 naming the field, never a 5xx)', async t => {
  const { app } = await buildTestApp({ geo, policiesDir })
  t.teardown(() => app.close())
  const evaluate = async (transaction: unknown): Promise<LightMyRequestResponse> => await app.inject({
    method: 'POST',
    url: '/access/v1/evaluation',
    payload: { subject: { type: 'user', id: 'frank', properties: { claims: { sub: 'frank', amr: ['pwd'], auth_time: NOW_S - 3600 } } }, action: { name: 'payments.initiate' }, resource: { type: 'payment', id: 'p-1' }, context: { transaction } }
  })
  for (const [transaction, message] of [
    [{ amount: 5, currency: 'EUR', payee: { name: 'A', iban: 'DE89370400440532013000' } }, 'context.transaction.amount: must be a string'],
    [{ amount: '5', currency: 'EUR' }, 'context.transaction.payee: is required'],
    [{ amount: '5', currency: 'EUR', payee: { name: 'A', iban: 'DE89370400440532013001' } }, 'context.transaction.payee.iban: not a valid IBAN (its length, format or check digits are wrong for its country)'],
    ['5 EUR', 'context.transaction: must be an object']
  ] as const) {
    const res = await evaluate(transaction)
    t.equal(res.statusCode, 400, JSON.stringify(transaction))
    t.equal(res.json().message, message)
  }
  const ok = await evaluate({ amount: '5', currency: 'EUR', payee: { name: 'A', iban: 'DE89370400440532013000' } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().decision, true, 'a low-value payment is exempted through AuthZEN too')
})

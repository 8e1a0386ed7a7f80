// A history store outage never yields allow (docs/failure-rules.md): the triggers that need history fire,
// with a reason saying so, and a once-only authentication that cannot be checked or consumed
// is refused.
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { pino } from 'pino'
import type { HistoryStore } from '../../src/signals/history.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { buildTestApp, decide, NOW_S, postDecide, session } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const OUTAGE = 'connect ECONNREFUSED 127.0.0.1:6379'

/** Wraps a store; each operation rejects while its flag is set (payment state: reads with `read`, completing an SCA with `consume`, other writes with `record`). */
function faultyStore (inner: HistoryStore = createMemoryHistoryStore({ maxSubjects: 100 })): HistoryStore & { fail: { read: boolean, record: boolean, consume: boolean }, calls: string[] } {
  const fail = { read: false, record: false, consume: false }
  const calls: string[] = []
  const down = (op: string): Promise<never> => Promise.reject(new Error(`${OUTAGE} (${op})`))
  return {
    kind: inner.kind,
    fail,
    calls,
    read: (...args) => { calls.push('read'); return fail.read ? down('read') : inner.read(...args) },
    record: (...args) => { calls.push('record'); return fail.record ? down('record') : inner.record(...args) },
    consume: (...args) => { calls.push('consume'); return fail.consume ? down('consume') : inner.consume(...args) },
    psd2: {
      read: (...args) => { calls.push('psd2.read'); return fail.read ? down('psd2.read') : inner.psd2.read(...args) },
      exempt: (...args) => { calls.push('psd2.exempt'); return fail.record ? down('psd2.exempt') : inner.psd2.exempt(...args) },
      completeSca: (...args) => { calls.push('psd2.completeSca'); return fail.consume ? down('psd2.completeSca') : inner.psd2.completeSca(...args) },
      recordFailure: (...args) => { calls.push('psd2.recordFailure'); return fail.record ? down('psd2.recordFailure') : inner.psd2.recordFailure(...args) },
      clearFailures: (...args) => { calls.push('psd2.clearFailures'); return fail.record ? down('psd2.clearFailures') : inner.psd2.clearFailures(...args) }
    },
    ping: async () => !(fail.read || fail.record || fail.consume),
    close: () => inner.close()
  }
}

/** `account.profile.update` is guarded by the new-device-sensitive example policy (account.**). */
const profileUpdate = (subject: string, amr: string[], fingerprint: string, authAgo = 0): Record<string, unknown> =>
  ({ action: 'account.profile.update', ...session(subject, amr, authAgo), device: { fingerprint } })

t.test('read, record and consume all reject: an AAL 1 session under new-device-sensitive steps up', async t => {
  const store = faultyStore()
  store.fail.read = store.fail.record = store.fail.consume = true
  const { app } = await buildTestApp({ geo, history: store })
  t.teardown(() => app.close())

  const body = await decide(app, profileUpdate('outage-1', ['pwd'], 'phone-1'))
  t.equal(body.decision, 'step_up', 'never allow because the store failed')
  t.ok(store.calls.includes('read'), 'the store was asked')
  const reason = body.reasons.find(r => r.policy === 'new-device-sensitive')
  t.match(reason, { trigger: 'newDevice', outcome: 'step_up' })
  t.match(reason?.detail, /history/i, 'the reason names the history store')
  t.match(reason?.detail, /unavailable|ECONNREFUSED|fail/i, 'and says it failed')
  t.ok(body.challenge?.wwwAuthenticate, 'with a challenge to forward')
})

t.test('a device known before the outage does not let an AAL 1 session through during it', async t => {
  const store = faultyStore()
  const { app } = await buildTestApp({ geo, history: store })
  t.teardown(() => app.close())

  // Healthy: a fresh phishing-resistant AAL 2 session makes the phone known (high-risk-step-up,
  // which reads the device signal, restricts factors); then a password session on it is allowed.
  t.equal((await decide(app, profileUpdate('outage-2', ['passkey'], 'phone-2'))).decision, 'allow')
  t.equal((await decide(app, profileUpdate('outage-2', ['pwd'], 'phone-2', 3600))).decision, 'allow', 'control: the known device does not fire')

  store.fail.read = store.fail.record = store.fail.consume = true
  const during = await decide(app, profileUpdate('outage-2', ['pwd'], 'phone-2', 3600))
  t.equal(during.decision, 'step_up', 'the known device cannot be confirmed during the outage')
  t.match(during.reasons.find(r => r.policy === 'new-device-sensitive')?.detail, /history/i)

  t.test('a read failure alone is enough', async t => {
    store.fail.record = store.fail.consume = false
    t.equal((await decide(app, profileUpdate('outage-2', ['pwd'], 'phone-2', 3600))).decision, 'step_up')
  })

  t.test('after the outage the device is known again', async t => {
    store.fail.read = store.fail.record = store.fail.consume = false
    t.equal((await decide(app, profileUpdate('outage-2', ['pwd'], 'phone-2', 3600))).decision, 'allow')
  })
})

t.test('a record failure only means nothing was learnt (more step-ups, never fewer)', async t => {
  const store = faultyStore()
  store.fail.record = true
  const { app } = await buildTestApp({ geo, history: store })
  t.teardown(() => app.close())
  t.equal((await decide(app, profileUpdate('outage-3', ['passkey'], 'phone-3'))).decision, 'allow', 'the satisfied policy still allows')
  t.ok(store.calls.includes('record'), 'learning was attempted')
  t.equal((await decide(app, profileUpdate('outage-3', ['pwd'], 'phone-3', 3600))).decision, 'step_up', 'the device was not learnt')
})

t.test('once-only (treasury desk) with the store down is refused, not allowed', async t => {
  const desk = (subject: string): Record<string, unknown> => ({
    tenant: 'acme', application: 'treasury-desk', action: 'treasury.transfer',
    subject: { id: subject }, claims: { sub: subject, amr: ['pwd', 'otp'], auth_time: NOW_S }
  })

  t.test('the consumed state cannot be read', async t => {
    const store = faultyStore()
    store.fail.read = true
    const { app } = await buildTestApp({ geo, history: store })
    t.teardown(() => app.close())
    const body = await decide(app, desk('once-1'))
    t.equal(body.decision, 'step_up')
    t.match(body.reasons.find(r => r.policy === 'acme-treasury-desk-every-time'), { outcome: 'step_up' })
  })

  t.test('the authentication cannot be consumed', async t => {
    const store = faultyStore()
    store.fail.consume = true
    const { app } = await buildTestApp({ geo, history: store })
    t.teardown(() => app.close())
    const body = await decide(app, desk('once-2'))
    t.ok(store.calls.includes('consume'), 'consumption was attempted')
    t.equal(body.decision, 'step_up', 'an allow that could not consume becomes a step-up')
  })
})

t.test('a failed step-up the store cannot record is still answered 200, logged, and counted as a store error', async t => {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } }))
  const store = faultyStore()
  const policiesDir = fileURLToPath(new URL('../fixtures/psd2-policies', import.meta.url))
  const { app } = await buildTestApp({ geo, history: store, policiesDir, logger })
  t.teardown(() => app.close())
  const series = 'stepup_history_errors_total{operation="recordFailure",kind="error"}'
  const counted = async (): Promise<number | undefined> => {
    const line = (await app.inject({ url: '/metrics' })).body.split('\n').find(l => l.startsWith(series + ' '))
    return line === undefined ? undefined : Number(line.slice(series.length + 1))
  }

  const answer = (await postDecide(app, {
    action: 'payments.initiate',
    claims: { sub: 'outage-4', amr: ['pwd'], auth_time: NOW_S - 3600 },
    context: { transaction: { amount: '420.00', currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89 3704 0044 0532 0130 00' } } }
  })).json()
  t.equal(answer.decision, 'step_up')
  t.equal(await counted(), 0, 'nothing counted before')

  store.fail.record = true
  const res = await app.inject({ method: 'POST', url: '/events', payload: { decisionId: answer.decisionId, event: 'auth.step_up_failed' } })
  t.equal(res.statusCode, 200, 'the report is still answered 200')
  t.ok(store.calls.includes('psd2.recordFailure'), 'the failure was written')
  t.ok(lines.some(l => l.level === 40 && l.msg === 'failed step-up not counted for the lockout: history store error'), 'a warning says the failure was not counted')
  t.equal(await counted(), 1, series)
})

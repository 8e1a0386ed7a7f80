// Once-only authentications (maxAge: 0, docs/policies.md#assurance) through HTTP, with the acme treasury-desk
// example policy: an authentication satisfies one operation, across instances sharing a store.
import t, { type Test } from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { buildTestApp, decide, NOW_S, type DecideAnswer } from '../helpers/app.js'
import type { FastifyInstance } from 'fastify'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const DESK = { tenant: 'acme', application: 'treasury-desk', action: 'treasury.transfer' }

/** A fresh AAL 2 session (password + OTP) that authenticated at `authTime`. */
const transfer = (subject: string, authTime = NOW_S, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ ...DESK, subject: { id: subject }, claims: { sub: subject, amr: ['pwd', 'otp'], auth_time: authTime }, ...extra })

const reasonOf = (body: DecideAnswer, policy: string): DecideAnswer['reasons'][number] | undefined =>
  body.reasons.find(r => r.policy === policy)

async function newApp (t: Test, history = createMemoryHistoryStore({ maxSubjects: 100 })): Promise<FastifyInstance> {
  const { app } = await buildTestApp({ geo, history })
  t.teardown(() => app.close())
  return app
}

t.test('a fresh AAL 2 authentication is allowed once, then the same auth_time must step up', async t => {
  const app = await newApp(t)
  const first = await decide(app, transfer('desk-1'))
  t.equal(first.decision, 'allow')
  t.match(reasonOf(first, 'acme-treasury-desk-every-time'), { outcome: 'satisfied' })
  t.notOk(reasonOf(first, 'acme-treasury'), 'the tenant policy is overridden on the desk')

  const second = await decide(app, transfer('desk-1'))
  t.equal(second.decision, 'step_up', 'the authentication was used up')
  t.match(reasonOf(second, 'acme-treasury-desk-every-time'), { outcome: 'step_up', unmet: ['consumed'] })
  t.match(second.required, { aal: 2, maxAge: 0 })
  t.equal(second.message, 'Each treasury operation on the desk needs a new confirmation.')
  t.match(second.challenge, { status: 401, wwwAuthenticate: /(^|[ ,])max_age=0($|[ ,])/ })

  const third = await decide(app, transfer('desk-1'))
  t.equal(third.decision, 'step_up', 'and stays used up')

  t.equal((await decide(app, transfer('desk-1', NOW_S - 10))).decision, 'allow', 'a new authentication is allowed once')
  t.equal((await decide(app, transfer('desk-1', NOW_S - 10))).decision, 'step_up')
  t.equal((await decide(app, transfer('desk-2'))).decision, 'allow', 'the same auth_time of another user is another authentication')
})

t.test('only an allow consumes: a denied or stepped-up decision leaves the authentication usable', async t => {
  const app = await newApp(t)
  const denied = await decide(app, transfer('desk-3', NOW_S, { ip: '192.0.2.1' }))
  t.equal(denied.decision, 'deny', 'the threat list denies it')
  t.equal((await decide(app, transfer('desk-3'))).decision, 'allow', 'not consumed by the deny')
})

t.test('outside the desk application the tenant policy applies (15 minutes, reusable)', async t => {
  const app = await newApp(t)
  for (let i = 0; i < 3; i++) {
    const body = await decide(app, transfer('desk-4', NOW_S, { application: 'treasury-web' }))
    t.equal(body.decision, 'allow', `request ${i + 1}`)
    t.match(reasonOf(body, 'acme-treasury'), { outcome: 'satisfied' })
  }
  t.equal((await decide(app, transfer('desk-4'))).decision, 'allow', 'the reuse elsewhere did not consume it for the desk')
})

t.test('a stale or weak session on the desk steps up with max_age=0', async t => {
  const app = await newApp(t)
  const stale = await decide(app, transfer('desk-5', NOW_S - 120))
  t.equal(stale.decision, 'step_up', 'older than the clock skew')
  const weak = await decide(app, { ...transfer('desk-5'), claims: { sub: 'desk-5', amr: ['pwd'], auth_time: NOW_S } })
  t.equal(weak.decision, 'step_up')
  t.match(weak.required, { aal: 2, maxAge: 0 })
})

t.test('two instances sharing one memory store: consumed on one is refused on the other', async t => {
  const shared = createMemoryHistoryStore({ maxSubjects: 100 })
  const a = await newApp(t, shared)
  const b = await newApp(t, shared)

  t.equal((await decide(a, transfer('desk-6'))).decision, 'allow', 'instance A allows it once')
  t.equal((await decide(b, transfer('desk-6'))).decision, 'step_up', 'instance B refuses it')
  t.equal((await decide(b, transfer('desk-6', NOW_S - 5))).decision, 'allow', 'B allows a new authentication')
  t.equal((await decide(a, transfer('desk-6', NOW_S - 5))).decision, 'step_up', 'and A refuses that one')

  t.test('concurrent requests with one authentication: exactly one allow', async t => {
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => decide(i % 2 === 0 ? a : b, transfer('desk-7'))))
    const decisions = answers.map(r => r.decision)
    t.equal(decisions.filter(d => d === 'allow').length, 1, `one allow among ${decisions.join(', ')}`)
    t.equal(decisions.filter(d => d === 'step_up').length, 11)
  })

  t.test('separate stores do not share consumption (control)', async t => {
    const c = await newApp(t)
    t.equal((await decide(c, transfer('desk-6'))).decision, 'allow')
  })
})

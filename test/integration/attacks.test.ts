// The attacker's retry and detour (docs/policies.md#history), end to end through HTTP with the memory store.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { ask, Clock, LONDON, scenarioApp } from './scenarios.js'

const geo = await openGeoLookup({})
const PASSWORD = ['pwd']
const PASSWORD_OTP = ['pwd', 'otp']

t.test('a step-up from a new device and country, retried, stays step-up until a satisfying session is allowed', async t => {
  const clock = new Clock()
  const app = await scenarioApp(createMemoryHistoryStore({ maxSubjects: 100 }), geo, clock)
  for (let i = 0; i < 5; i++) {
    const r = await ask(app, clock, { action: 'payments.payout', amr: PASSWORD })
    t.equal(r.decision, 'step_up', `retry ${i + 1}`)
    t.same(r.reasons.map(x => x.trigger).sort(), ['newCountry', 'newDevice'])
    clock.advance(30)
  }
  // The real user steps up: AAL 2, fresh. Allowed, and now the device and country are known.
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD_OTP })).decision, 'allow')
  clock.advance(60)
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD, authAgo: 3600 })).decision, 'allow', 'a known device and country no longer fire')
})

t.test("the detour: routine and weakly guarded actions teach nothing to a stolen password's session", async t => {
  const clock = new Clock()
  const app = await scenarioApp(createMemoryHistoryStore({ maxSubjects: 100 }), geo, clock)
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD })).decision, 'step_up')
  t.equal((await ask(app, clock, { action: 'profile.read', amr: PASSWORD })).decision, 'allow', 'no policy guards it')
  const light = await ask(app, clock, { action: 'profile.view', amr: PASSWORD })
  t.equal(light.decision, 'allow', 'the weak guard is satisfied by a password')
  t.equal(light.reasons[0]?.outcome, 'satisfied')
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD, application: 'other-app' })).decision, 'step_up', 'another application of the tenant')
  clock.advance(10)
  const again = await ask(app, clock, { action: 'payments.payout', amr: PASSWORD })
  t.equal(again.decision, 'step_up', 'still a step-up: nothing was learnt')
  t.same(again.reasons.map(x => x.trigger).sort(), ['newCountry', 'newDevice'])
})

t.test('a stale strong session does not teach either', async t => {
  const clock = new Clock()
  const app = await scenarioApp(createMemoryHistoryStore({ maxSubjects: 100 }), geo, clock)
  // AAL 2 but authenticated an hour ago: step-up (maxAge 15m), and nothing learnt from the allowed weak route.
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD_OTP, authAgo: 3600 })).decision, 'step_up')
  t.equal((await ask(app, clock, { action: 'profile.view', amr: PASSWORD_OTP, authAgo: 3600 })).decision, 'allow')
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD_OTP, authAgo: 3600 })).decision, 'step_up')
})

t.test('impossible travel after a learnt location; a new strong session from the new place is allowed and moves it', async t => {
  const clock = new Clock()
  const app = await scenarioApp(createMemoryHistoryStore({ maxSubjects: 100 }), geo, clock)
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD_OTP, ip: LONDON, device: 'phone' })).decision, 'allow')
  clock.advance(120)
  const jump = await ask(app, clock, { action: 'payments.payout', amr: PASSWORD, authAgo: 600, ip: '203.116.0.1', device: 'phone' })
  t.equal(jump.decision, 'step_up')
  t.ok(jump.reasons.some(r => r.trigger === 'impossibleTravel' && /Bromley, GB -> Singapore, SG/.test(r.detail ?? '')))
  // Retried by the attacker: still impossible travel from London.
  clock.advance(60)
  t.equal((await ask(app, clock, { action: 'payments.payout', amr: PASSWORD, authAgo: 600, ip: '203.116.0.1', device: 'phone' })).decision, 'step_up')
})

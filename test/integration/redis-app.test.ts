// The service on a real Redis: two instances agree, an outage fails closed, recovery needs no restart.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createRedisHistoryStore } from '../../src/signals/redis-history.js'
import { requireRedis, startRedis, startRedisCluster } from '../helpers/redis.js'
import { ask, Clock, scenarioApp } from './scenarios.js'

if (requireRedis(t, { cluster: true })) {
  const geo = await openGeoLookup({})
  const redis = await startRedis(t)
  // A short command timeout where Redis is stopped on purpose; elsewhere a longer one that a loaded
  // CI machine does not exceed (a learning write that times out is dropped: the next request steps up).
  const store = (commandTimeoutMs = 2000): ReturnType<typeof createRedisHistoryStore> => {
    const s = createRedisHistoryStore({ url: redis.url, commandTimeoutMs })
    t.teardown(() => s.close())
    return s
  }

  t.test('two instances sharing one Redis agree on learnt devices and consumed authentications', async t => {
    const clock = new Clock()
    const a = await scenarioApp(store(), geo, clock)
    const b = await scenarioApp(store(), geo, clock)
    t.equal((await ask(a, clock, { action: 'payments.payout', amr: ['pwd', 'otp'], device: 'shared-laptop' })).decision, 'allow', 'learnt on A')
    clock.advance(5)
    t.equal((await ask(b, clock, { action: 'payments.payout', amr: ['pwd'], authAgo: 3600, device: 'shared-laptop' })).decision, 'allow', 'known on B')

    const once = { action: 'treasury.transfer', amr: ['pwd', 'otp'] }
    t.equal((await ask(a, clock, once)).decision, 'allow', 'used once on A')
    const reuse = await ask(b, clock, once)
    t.equal(reuse.decision, 'step_up', 'refused on B')
    t.match(reuse.reasons[0], { policy: 'desk-every-time', outcome: 'step_up' })
  })

  t.test('Redis stopped mid-run: history triggers fire with a reason, then recovery without a restart', async t => {
    const clock = new Clock()
    const app = await scenarioApp(store(200), geo, clock)
    // Learn the device and country first, so only an outage can make them fire.
    t.equal((await ask(app, clock, { action: 'payments.payout', amr: ['pwd', 'otp'], device: 'desk' })).decision, 'allow')
    t.equal((await ask(app, clock, { action: 'payments.payout', amr: ['pwd'], authAgo: 3600, device: 'desk' })).decision, 'allow')

    await redis.stop()
    const down = await ask(app, clock, { action: 'payments.payout', amr: ['pwd'], authAgo: 3600, device: 'desk' })
    t.equal(down.decision, 'step_up', 'never allow because Redis is away')
    t.ok(down.reasons.every(r => /history unavailable/.test(r.detail ?? '')), 'every reason says the history is unavailable')
    const ready = await app.inject('/readyz')
    t.equal(ready.statusCode, 200)
    t.match(ready.json(), { status: 'degraded', history: { ok: false } })
    const once = await ask(app, clock, { action: 'treasury.transfer', amr: ['pwd', 'otp'] })
    t.equal(once.decision, 'step_up', 'a once-only authentication cannot be checked, so it does not count')

    await redis.restart() // an empty Redis on the same port
    let recovered = false
    for (let i = 0; i < 50 && !recovered; i++) {
      const r = await ask(app, clock, { action: 'profile.read', amr: ['pwd'] })
      const probe = await app.inject('/readyz')
      recovered = r.decision === 'allow' && probe.json().history.ok === true
      if (!recovered) await new Promise(resolve => setTimeout(resolve, 100))
    }
    t.ok(recovered, 'the same app serves with Redis again')
    const after = await ask(app, clock, { action: 'payments.payout', amr: ['pwd', 'otp'], device: 'desk' })
    t.equal(after.decision, 'allow')
    t.notOk(after.reasons.some(r => /unavailable/.test(r.detail ?? '')))
  })

  t.test('the service works on a 3-master Redis Cluster', async t => {
    const cluster = await startRedisCluster(t)
    const s = createRedisHistoryStore({ clusterNodes: cluster.nodes, commandTimeoutMs: 500 })
    t.teardown(() => s.close())
    const clock = new Clock()
    const app = await scenarioApp(s, geo, clock)
    t.equal((await ask(app, clock, { action: 'payments.payout', amr: ['pwd'] })).decision, 'step_up')
    t.equal((await ask(app, clock, { action: 'payments.payout', amr: ['pwd', 'otp'] })).decision, 'allow')
    t.equal((await ask(app, clock, { action: 'payments.payout', amr: ['pwd'], authAgo: 3600 })).decision, 'allow', 'learnt in the cluster')
    t.equal((await ask(app, clock, { action: 'treasury.transfer', amr: ['pwd', 'otp'] })).decision, 'allow')
    t.equal((await ask(app, clock, { action: 'treasury.transfer', amr: ['pwd', 'otp'] })).decision, 'step_up')
  })
}

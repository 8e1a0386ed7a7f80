// Once-only (maxAge: 0) after Redis loses its data: a real redis-server is killed and restarted
// empty; an authentication consumed before the loss must not be accepted again while it could
// still be fresh. Once-only state counts as unavailable (step-up) for that window.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { consumeTtl } from '../../src/signals/history.js'
import { createRedisHistoryStore } from '../../src/signals/redis-history.js'
import { requireRedis, startRedis } from '../helpers/redis.js'
import { ask, Clock, scenarioApp } from './scenarios.js'

const waitFor = async (check: () => Promise<boolean>, ms = 10_000): Promise<boolean> => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return false
}

if (requireRedis(t)) {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())
  const SKEW = 30 // the default assurance.clockSkew of the scenario policies

  t.test('a consumed authentication is refused after Redis restarts empty, until it can no longer be fresh', async t => {
    const redis = await startRedis(t)
    const store = createRedisHistoryStore({ url: redis.url, commandTimeoutMs: 200 })
    t.teardown(() => store.close())
    const clock = new Clock()
    const app = await scenarioApp(store, geo, clock)
    t.teardown(() => app.close())
    const once = { action: 'treasury.transfer', amr: ['pwd', 'otp'] }

    t.equal((await ask(app, clock, once)).decision, 'allow', 'the authentication is used once')
    t.equal((await ask(app, clock, once)).decision, 'step_up', 'and refused the second time')

    await redis.restart() // killed, started again without its data
    t.ok(await waitFor(() => store.ping()), 'the store reconnects')
    clock.advance(5)
    const replay = await ask(app, clock, { ...once, authAgo: 5 })
    t.equal(replay.decision, 'step_up', 'the same authentication, still within the skew, is not accepted again')
    const fresh = await ask(app, clock, once)
    t.equal(fresh.decision, 'step_up', 'within the window no once-only authentication counts (the store cannot say)')

    clock.advance(consumeTtl(SKEW) + 1)
    t.equal((await ask(app, clock, once)).decision, 'allow', 'after the window a new authentication is used once again')
    t.equal((await ask(app, clock, once)).decision, 'step_up', 'and only once')
  })

  t.test('FLUSHALL without a reconnect is detected too', async t => {
    const redis = await startRedis(t)
    const store = createRedisHistoryStore({ url: redis.url, commandTimeoutMs: 200 })
    t.teardown(() => store.close())
    const clock = new Clock()
    const app = await scenarioApp(store, geo, clock)
    t.teardown(() => app.close())
    const once = { action: 'treasury.transfer', amr: ['pwd', 'otp'] }
    t.equal((await ask(app, clock, once)).decision, 'allow')
    const { Redis } = await import('ioredis')
    const admin = new Redis(redis.url)
    await admin.flushall()
    admin.disconnect()
    t.equal((await ask(app, clock, once)).decision, 'step_up', 'the consumed authentication is not accepted again')
  })

  t.test('a restart that keeps the data (persistence) is not a loss', async t => {
    const redis = await startRedis(t)
    const store = createRedisHistoryStore({ url: redis.url, commandTimeoutMs: 200 })
    t.teardown(() => store.close())
    const clock = new Clock()
    const app = await scenarioApp(store, geo, clock)
    t.teardown(() => app.close())
    const once = { action: 'treasury.transfer', amr: ['pwd', 'otp'] }
    t.equal((await ask(app, clock, once)).decision, 'allow')
    // A pause and resume (the data stays) must not close the once-only path.
    redis.pause()
    await new Promise(resolve => setTimeout(resolve, 300))
    redis.resume()
    t.ok(await waitFor(() => store.ping()))
    clock.advance(1)
    t.equal((await ask(app, clock, { ...once, authAgo: 1 })).decision, 'step_up', 'still consumed')
    t.equal((await ask(app, clock, { ...once, amr: ['pwd', 'hwk'] })).decision, 'allow', 'a new authentication counts at once: no loss was seen')
  })
}

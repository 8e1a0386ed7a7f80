// Overload: when the event loop lags past the limit, requests get a fast 503 with Retry-After.
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import { unavailableGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'

t.test('a saturated event loop answers 503 service_unavailable, then recovers', async t => {
  const app = await buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new PolicyHolder((await loadPolicySet('policies')).set),
    geo: unavailableGeoLookup('not needed'),
    history: createMemoryHistoryStore({ maxSubjects: 10 }),
    logger: pino({ level: 'silent' }),
    maxEventLoopDelayMs: 50
  })
  t.teardown(() => app.close())
  await app.ready()
  const body = { action: 'profile.read', subject: { id: 'u' } }
  t.equal((await app.inject({ method: 'POST', url: '/decide', payload: body })).statusCode, 200)

  let shed: { statusCode: number, headers: Record<string, unknown>, json: () => unknown } | undefined
  for (let i = 0; i < 20 && shed?.statusCode !== 503; i++) {
    const until = Date.now() + 300
    while (Date.now() < until) { /* block the loop, as a CPU-bound burst would */ }
    await new Promise(resolve => setTimeout(resolve, 5))
    shed = await app.inject({ method: 'POST', url: '/decide', payload: body })
  }
  t.equal(shed?.statusCode, 503)
  t.equal(shed?.headers['retry-after'], '1')
  t.match(shed?.json(), { error: 'service_unavailable', message: /overloaded/ })

  let recovered = false
  for (let i = 0; i < 100 && !recovered; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    recovered = (await app.inject({ method: 'POST', url: '/decide', payload: body })).statusCode === 200
  }
  t.ok(recovered, 'answers again once the loop is idle')
})

// POST /events and GET /audit while the audit store (Redis) is down answer 503 with Retry-After,
// never 500; bad /audit query values answer 400 naming the field, never 500.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { createRedisAuditLog } from '../../src/audit/redis-audit-log.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { createRedisClient } from '../../src/signals/redis-history.js'
import { EXAMPLE_POLICIES, NOW_MS, policySet, session } from '../helpers/app.js'
import { requireRedis, startRedis } from '../helpers/redis.js'

const ADMIN = { authorization: 'Bearer admin-key' }

if (requireRedis(t)) {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())
  const redis = await startRedis(t)
  const client = createRedisClient({ url: redis.url, commandTimeoutMs: 500 })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await new Promise(resolve => client.once('ready', resolve))
  const audit = createRedisAuditLog(client, { maxEntries: 1000, prefix: 'down:' })
  const app: FastifyInstance = await buildApp({ apiKeys: [], adminApiKeys: ['admin-key'] }, {
    policies: new PolicyHolder(await policySet(EXAMPLE_POLICIES), () => NOW_MS),
    geo,
    history: createMemoryHistoryStore({ maxSubjects: 100 }),
    logger: pino({ level: 'silent' }),
    now: () => NOW_MS,
    audit,
    maxEventLoopDelayMs: 0
  })
  await app.ready()
  t.teardown(() => app.close())

  const stepUp = async (): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/decide', payload: { action: 'account.email.change', ...session('user-1', ['pwd']) } })
    t.equal(res.json().decision, 'step_up')
    return res.json().decisionId as string
  }
  const audited = (query: string): Promise<Awaited<ReturnType<typeof app.inject>>> => app.inject({ url: `/audit${query}`, headers: ADMIN })

  t.test('bad /audit query values are 400 naming the field (Redis up)', async t => {
    for (const [query, field] of [
      ['?from=99999999999999999999', 'from'],
      ['?to=99999999999999999999', 'to'],
      ['?from=-5', 'from'],
      ['?from=yesterday', 'from'],
      ['?to=2026-13-45T00:00:00Z', 'to'],
      ['?from=+275760-09-14T00:00:00Z', 'from'],
      ['?from=2026-11-22T12:00:00Z&to=2026-11-22T11:00:00Z', 'from'],
      ['?limit=0', 'limit'],
      ['?limit=1001', 'limit'],
      ['?limit=abc', 'limit'],
      ['?limit=1e3', 'limit']
    ] as const) {
      const res = await audited(query)
      t.equal(res.statusCode, 400, `${query}: ${res.body}`)
      t.equal(res.json().error, 'invalid_request')
      t.match(res.json().message, new RegExp(`\\b${field}\\b`), `${query}: names ${field}`)
    }
    const ok = await audited('?from=0&to=' + String(NOW_MS + 1000) + '&limit=1000')
    t.equal(ok.statusCode, 200, ok.body)
  })

  t.test('Redis stopped: POST /events and GET /audit answer 503 with Retry-After; back when Redis is', async t => {
    const decisionId = await stepUp()
    await audit.flush()
    await redis.stop()
    const event = await app.inject({ method: 'POST', url: '/events', payload: { decisionId, event: 'auth.step_up_completed' } })
    t.equal(event.statusCode, 503, event.body)
    t.equal(event.json().error, 'service_unavailable')
    t.ok(Number(event.headers['retry-after']) >= 1, `Retry-After: ${String(event.headers['retry-after'])}`)
    const trail = await audited('')
    t.equal(trail.statusCode, 503, trail.body)
    t.equal(trail.json().error, 'service_unavailable')
    t.ok(Number(trail.headers['retry-after']) >= 1, `Retry-After: ${String(trail.headers['retry-after'])}`)

    await redis.restart()
    let status = 0
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await audited('')).statusCode
      if (status !== 200) await new Promise(resolve => setTimeout(resolve, 100))
    }
    t.equal(status, 200, '/audit answers again once Redis is back')
    const unknown = await app.inject({ method: 'POST', url: '/events', payload: { decisionId, event: 'auth.step_up_completed' } })
    t.equal(unknown.statusCode, 404, 'the restarted Redis is empty: the step-up is unknown, a 404 not a 5xx')
  })
}

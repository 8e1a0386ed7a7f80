// Rate limits: one caller hitting its limit gets 429 with Retry-After and does not starve
// another; POST /events is limited per subject; with Redis the count is shared by instances,
// and a Redis outage lets requests through instead of failing them.
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { pino } from 'pino'
import { Redis } from 'ioredis'
import { buildApp, type AppConfig } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { EXAMPLE_POLICIES, NOW_MS, policySet, session } from '../helpers/app.js'
import { requireRedis, startRedis } from '../helpers/redis.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const KEY_A = 'caller-a-0123456789abcdef'
const KEY_B = 'caller-b-0123456789abcdef'

async function app (config: Partial<AppConfig>, redis?: Redis): Promise<FastifyInstance> {
  const a = await buildApp({ apiKeys: [], adminApiKeys: [], ...config }, {
    policies: new PolicyHolder(await policySet(EXAMPLE_POLICIES), () => NOW_MS),
    geo,
    history: createMemoryHistoryStore({ maxSubjects: 100 }),
    logger: pino({ level: 'silent' }),
    now: () => NOW_MS,
    maxEventLoopDelayMs: 0,
    ...(redis ? { rateLimitRedis: redis } : {})
  })
  await a.ready()
  t.teardown(() => a.close())
  return a
}

const decide = (a: FastifyInstance, from: { ip?: string, key?: string }, subject = 'rl-user'): Promise<LightMyRequestResponse> =>
  a.inject({
    method: 'POST',
    url: '/decide',
    remoteAddress: from.ip ?? '10.0.0.1',
    headers: from.key === undefined ? {} : { authorization: `Bearer ${from.key}` },
    payload: { action: 'profile.read', ...session(subject, ['pwd']) }
  })

t.test('without API keys, each client address has its own budget', async t => {
  const a = await app({ rateLimitPerMinute: 5 })
  for (let i = 0; i < 5; i++) t.equal((await decide(a, { ip: '10.0.0.1' })).statusCode, 200, `request ${i + 1} of 5`)
  const over = await decide(a, { ip: '10.0.0.1' })
  t.equal(over.statusCode, 429)
  t.match(over.json(), { error: 'rate_limited', message: /caller: more than 5 requests a minute/ })
  const retryAfter = Number(over.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After is a number of seconds within the window (${over.headers['retry-after']})`)
  t.equal((await decide(a, { ip: '10.0.0.2' })).statusCode, 200, 'another caller is not starved')
  t.equal((await a.inject('/healthz')).statusCode, 200, 'probes are not limited')
})

t.test('IPv6 callers are grouped by /64', async t => {
  const a = await app({ rateLimitPerMinute: 2 })
  t.equal((await decide(a, { ip: '2001:db8:1:2::1' })).statusCode, 200)
  t.equal((await decide(a, { ip: '2001:db8:1:2::2' })).statusCode, 200)
  t.equal((await decide(a, { ip: '2001:db8:1:2:ffff::3' })).statusCode, 429, 'a new address in the same /64 shares the budget')
  t.equal((await decide(a, { ip: '2001:db8:1:3::1' })).statusCode, 200, 'another /64 has its own')
})

t.test('with API keys, each key has its own budget whatever the address', async t => {
  const a = await app({ apiKeys: [KEY_A, KEY_B], rateLimitPerMinute: 3 })
  for (let i = 0; i < 3; i++) t.equal((await decide(a, { key: KEY_A })).statusCode, 200)
  t.equal((await decide(a, { key: KEY_A })).statusCode, 429, 'caller A is over its limit')
  t.equal((await decide(a, { key: KEY_A, ip: '10.9.9.9' })).statusCode, 429, 'a new address does not reset the key')
  for (let i = 0; i < 3; i++) t.equal((await decide(a, { key: KEY_B })).statusCode, 200, 'caller B from the same address is served')
  t.equal((await decide(a, { key: 'not-a-key-0123456789' })).statusCode, 401, 'a wrong key is refused before it is counted')
})

t.test('on the gateway endpoints the caller is its X-Stepup-Key, never the user token it forwards (fresh tokens do not buy fresh budgets)', async t => {
  const a = await app({ apiKeys: [KEY_A, KEY_B], rateLimitPerMinute: 3 })
  const ask = (gatewayKey: string, token: string): Promise<LightMyRequestResponse> => a.inject({
    method: 'GET',
    url: '/authz/auth-request',
    remoteAddress: '10.0.0.7',
    headers: { 'x-stepup-key': gatewayKey, authorization: `Bearer ${token}`, 'x-original-method': 'GET', 'x-original-url': 'https://api.example.com/v1/profile' }
  })
  for (let i = 0; i < 3; i++) t.not((await ask(KEY_A, `user-token-${i}`)).statusCode, 429, `request ${i + 1} of 3`)
  t.equal((await ask(KEY_A, 'yet-another-user-token')).statusCode, 429, 'a new user token does not reset the gateway\'s budget')
  t.not((await ask(KEY_B, 'user-token-0')).statusCode, 429, 'another gateway key is served')
})

t.test('RATE_LIMIT_PER_MINUTE=0 turns the limit off; the default is generous; bad values name the variable', async t => {
  const a = await app({ rateLimitPerMinute: 0 })
  for (let i = 0; i < 50; i++) {
    const res = await decide(a, {})
    if (res.statusCode !== 200) return t.fail(`request ${i}: ${res.statusCode}`)
  }
  t.pass('50 requests, no limit')
  t.equal(loadConfig({}).rateLimitPerMinute, 600_000)
  t.equal(loadConfig({ RATE_LIMIT_PER_MINUTE: '0' }).rateLimitPerMinute, 0)
  t.throws(() => loadConfig({ RATE_LIMIT_PER_MINUTE: 'lots' }), /RATE_LIMIT_PER_MINUTE/)
  t.throws(() => loadConfig({ RATE_LIMIT_SUBJECT_EVENTS_PER_MINUTE: '-1' }), /RATE_LIMIT_SUBJECT_EVENTS_PER_MINUTE/)
})

/** A step-up decision id for `subject` (a weak session on an action that needs more). */
async function stepUp (a: FastifyInstance, subject: string, ip = '10.0.0.1'): Promise<string> {
  const res = await a.inject({
    method: 'POST',
    url: '/decide',
    remoteAddress: ip,
    payload: { action: 'account.email.change', tenant: 'acme', ...session(subject, ['pwd']), device: { fingerprint: 'fp' } }
  })
  const body = res.json<{ decision: string, decisionId: string }>()
  if (body.decision !== 'step_up') throw new Error(`expected step_up, got ${res.body}`)
  return body.decisionId
}

const event = (a: FastifyInstance, decisionId: string, ip = '10.0.0.1'): Promise<LightMyRequestResponse> =>
  a.inject({ method: 'POST', url: '/events', remoteAddress: ip, payload: { decisionId, event: 'auth.step_up_completed' } })

t.test('POST /events is limited per subject, before anything is recorded', async t => {
  const a = await app({ rateLimitPerMinute: 1000, rateLimitSubjectEventsPerMinute: 2 })
  const ids = [await stepUp(a, 'flooded'), await stepUp(a, 'flooded'), await stepUp(a, 'flooded')]
  t.equal((await event(a, ids[0]!)).statusCode, 200)
  t.equal((await event(a, ids[1]!)).statusCode, 200)
  const over = await event(a, ids[2]!, '10.0.0.7')
  t.equal(over.statusCode, 429, 'a third outcome for the same subject within the minute, even from another address')
  t.match(over.json(), { error: 'rate_limited', message: /subject: more than 2 requests a minute/ })
  t.ok(Number(over.headers['retry-after']) >= 1)
  t.equal((await event(a, await stepUp(a, 'someone-else'))).statusCode, 200, 'another subject is served')
  const audit = await a.inject({ method: 'POST', url: '/events', remoteAddress: '10.0.0.8', payload: { decisionId: ids[2], event: 'auth.step_up_completed' } })
  t.equal(audit.statusCode, 429, 'the refused outcome was not recorded (still refused, not 409 "already recorded")')
})

if (requireRedis(t)) {
  const redis = await startRedis(t)
  const ready = async (c: Redis): Promise<void> => {
    for (let i = 0; i < 200 && c.status !== 'ready'; i++) await new Promise(resolve => setTimeout(resolve, 25))
  }
  const client = async (): Promise<Redis> => {
    const c = new Redis(redis.url, { commandTimeout: 100, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: n => Math.min(n * 50, 500) })
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    await ready(c)
    return c
  }

  t.test('on Redis, two instances share one budget per caller', async t => {
    const c1 = await client()
    const c2 = await client()
    const a = await app({ rateLimitPerMinute: 4 }, c1)
    const b = await app({ rateLimitPerMinute: 4 }, c2)
    t.equal((await decide(a, { ip: '10.1.0.1' })).statusCode, 200)
    t.equal((await decide(b, { ip: '10.1.0.1' })).statusCode, 200)
    t.equal((await decide(a, { ip: '10.1.0.1' })).statusCode, 200)
    t.equal((await decide(b, { ip: '10.1.0.1' })).statusCode, 200)
    t.equal((await decide(a, { ip: '10.1.0.1' })).statusCode, 429, 'the fifth request, across both instances, is over')
    t.equal((await decide(b, { ip: '10.1.0.2' })).statusCode, 200, 'another caller is served')
    t.ok(Number(await c1.exists('stepup:rl:a:10.1.0.1')) === 1, 'the counter lives in Redis under the stepup:rl: namespace')
  })

  t.test('Redis down or hung: requests are served (no 5xx, no 429), and limits resume when it is back', async t => {
    const c = await client()
    const a = await app({ rateLimitPerMinute: 3 }, c)
    redis.pause()
    const started = Date.now()
    for (let i = 0; i < 5; i++) t.equal((await decide(a, { ip: '10.2.0.1' })).statusCode, 200, `hung Redis, request ${i + 1}`)
    t.ok(Date.now() - started < 5000, 'each waits at most the command timeout')
    redis.resume()
    await redis.stop()
    for (let i = 0; i < 5; i++) t.equal((await decide(a, { ip: '10.2.0.2' })).statusCode, 200, `stopped Redis, request ${i + 1}`)
    await redis.restart()
    await ready(c)
    const codes: number[] = []
    for (let i = 0; i < 4; i++) codes.push((await decide(a, { ip: '10.2.0.3' })).statusCode)
    t.same(codes, [200, 200, 200, 429], 'counted again once Redis is back')
  })
}

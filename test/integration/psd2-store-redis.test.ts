/**
 * The payment state on a real standalone redis-server and a real 3-master Redis Cluster: the
 * same contract as the in-memory store (test/helpers/psd2-contract.ts), then what only Redis
 * has: one round trip per call, the key layout and expiries, data loss, and an outage.
 */
import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import type { HistoryStore } from '../../src/signals/history.js'
import { PSD2_LOSS_MARGIN, PSD2_TTL } from '../../src/signals/psd2.js'
import { createRedisHistoryStore } from '../../src/signals/redis-history.js'
import { readyStore, requireRedis, startRedis, startRedisCluster, waitUntil } from '../helpers/redis.js'
import { NOW, psd2Contract, subject } from '../helpers/psd2-contract.js'

type T = Parameters<Parameters<typeof t.test>[0]>[0]

/** Commands the servers counted during `fn`, summed over nodes (INFO commandstats). */
async function commandsDuring (clients: Redis[], fn: () => Promise<unknown>): Promise<Map<string, number>> {
  for (const c of clients) await c.config('RESETSTAT')
  await fn()
  const out = new Map<string, number>()
  for (const c of clients) {
    for (const m of (await c.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]))
  }
  return out
}

function oneRoundTrip (t: T, open: () => Promise<HistoryStore>, clients: Redis[]): void {
  t.test('one round trip per call', async t => {
    const store = await open()
    t.teardown(() => store.close())
    const { psd2 } = store
    const key = subject('acme')
    // Scripts internally call these; they are counted by INFO commandstats but are not round trips.
    const scripted = new Set(['hmget', 'exists', 'get', 'set', 'zscore', 'lrange', 'hincrby', 'expire', 'del', 'zadd', 'zremrangebyrank', 'rpush'])
    const management = new Set(['info', 'config', 'config|resetstat', 'cluster', 'cluster|slots', 'cluster|info', 'cluster|shards', 'cluster|nodes', 'hello', 'client', 'client|setinfo', 'client|setname', 'ping', 'select', 'command', 'command|docs'])
    // The first call of each script on a connection may EVAL instead of EVALSHA.
    await psd2.read(key, { linked: { authTime: NOW, txHash: 'warm' }, payeeId: 'p', lockoutWindow: 900 }, NOW)
    await psd2.exempt(key, { cents: 1 }, NOW)
    await psd2.completeSca(key, { authTime: NOW, txHash: 'warm', ttl: 60 }, NOW)
    await psd2.recordFailure(key, NOW, 900)
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['read (everything)', () => psd2.read(key, { linked: { authTime: NOW, txHash: 'tx' }, payeeId: 'p', lockoutWindow: 900 }, NOW)],
      ['read (counters only)', () => psd2.read(key, {}, NOW)],
      ['exempt', () => psd2.exempt(key, { cents: 100, limit: { count: 5, cents: 10_000 } }, NOW)],
      ['completeSca', () => psd2.completeSca(key, { authTime: NOW, txHash: 'tx', ttl: 60, trustPayeeId: 'p' }, NOW)],
      ['completeSca (spent)', () => psd2.completeSca(key, { authTime: NOW, txHash: 'tx', ttl: 60, trustPayeeId: 'p' }, NOW)],
      ['recordFailure', () => psd2.recordFailure(key, NOW + 1, 900)]
    ]
    for (const [name, fn] of cases) {
      const calls = await commandsDuring(clients, fn)
      t.equal((calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0), 1, `${name}: exactly one EVALSHA/EVAL`)
      t.strictSame([...calls].filter(([cmd]) => cmd !== 'evalsha' && cmd !== 'eval' && !management.has(cmd) && !scripted.has(cmd)), [], `${name}: no other data command`)
    }
  })
}

t.test('standalone redis-server', async t => {
  if (!requireRedis(t)) return
  const server = await startRedis(t)
  const keyPrefix = `test-${randomUUID().slice(0, 8)}:`
  const open = (): Promise<HistoryStore> => readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 1000, keyPrefix }))
  psd2Contract(t, { make: open, shared: true })
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  oneRoundTrip(t, open, [admin])

  t.test('key layout and expiries', async t => {
    const store = await readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 1000 }))
    t.teardown(() => store.close())
    const key = subject('acme')
    const h = createHash('sha256').update(`t:4:acme\u0000${key.subject}`).digest('hex').slice(0, 32)
    await store.psd2.exempt(key, { cents: 1234 }, NOW)
    await store.psd2.recordFailure(key, NOW + 0.5, 900)
    await store.psd2.recordFailure(key, NOW + 7, 900)
    t.strictSame(await admin.hgetall(`stepup:px:{${h}}`), { n: '1', c: '1234' }, 'the counters')
    t.strictSame(await admin.lrange(`stepup:pf:{${h}}`, 0, -1), [String(NOW), String(NOW + 7)], 'the failures, to the second')
    const ttl = async (k: string): Promise<number> => admin.ttl(k)
    const counters = await ttl(`stepup:px:{${h}}`)
    t.ok(counters > PSD2_TTL - 60 && counters <= PSD2_TTL, `the counters expire in 400 days (${counters} s)`)
    const failures = await ttl(`stepup:pf:{${h}}`)
    t.ok(failures > 840 && failures <= 900, `the failures expire with the window (${failures} s)`)

    await store.psd2.completeSca(key, { authTime: NOW - 3, txHash: 'abc123', ttl: 330.2, trustPayeeId: 'payee-x' }, NOW + 9.9)
    const spent = `stepup:ps:{${h}}:${NOW - 3}:abc123`
    t.equal(await admin.get(spent), '1', 'the spent SCA')
    const spentTtl = await ttl(spent)
    t.ok(spentTtl > 270 && spentTtl <= 331, `it expires with its ttl, rounded up (${spentTtl} s)`)
    t.strictSame(await admin.zrange(`stepup:pb:{${h}}`, '0', '-1', 'WITHSCORES'), ['payee-x', String(NOW + 9)], 'the trusted payees, with when')
    const payees = await ttl(`stepup:pb:{${h}}`)
    t.ok(payees > PSD2_TTL - 60 && payees <= PSD2_TTL, `the trusted payees expire in 400 days (${payees} s)`)
    t.strictSame((await admin.keys(`stepup:*{${h}}*`)).sort(), [`stepup:pb:{${h}}`, spent].sort(), 'counters and failures deleted by the SCA; nothing else')
    const bytes = Number(await admin.memory('USAGE', `stepup:pb:{${h}}`))
    t.comment(`MEMORY USAGE of a trusted list with one payee: ${bytes} bytes`)
  })

  t.test('a spent SCA expires on the server after its ttl', async t => {
    const store = await open()
    t.teardown(() => store.close())
    const key = subject()
    const sca = { authTime: NOW, txHash: 'short', ttl: 1 }
    t.equal(await store.psd2.completeSca(key, sca, NOW), true)
    t.equal(await store.psd2.completeSca(key, sca, NOW), false)
    t.ok(await waitUntil(async () => (await store.psd2.read(key, { linked: sca }, NOW)).linkedConsumed === false, 5000), 'forgotten once the key expired')
    t.equal(await store.psd2.completeSca(key, sca, NOW), true)
  })
})

t.test('redis cluster (3 masters)', async t => {
  if (!requireRedis(t, { cluster: true })) return
  const cluster = await startRedisCluster(t)
  const keyPrefix = `test-${randomUUID().slice(0, 8)}:`
  const open = async (): Promise<HistoryStore> => {
    const store = await readyStore(createRedisHistoryStore({ clusterNodes: cluster.nodes, commandTimeoutMs: 1000, keyPrefix }))
    if (store.kind !== 'redis-cluster') throw new Error(`expected a cluster store, got ${store.kind}`)
    return store
  }
  psd2Contract(t, { make: open, shared: true })
  const admins = cluster.nodes.map(n => new Redis(n.port, n.host))
  t.teardown(() => { for (const a of admins) a.disconnect() })
  oneRoundTrip(t, open, admins)
})

t.test('standalone redis: data loss makes spent SCAs unavailable, never unspent', async t => {
  if (!requireRedis(t)) return
  const linked = { authTime: NOW - 20, txHash: 'tx-before' }

  const spendThenLose = async (t: T, lose: (server: Awaited<ReturnType<typeof startRedis>>) => Promise<void>): Promise<{ store: HistoryStore, losses: number[] }> => {
    const server = await startRedis(t)
    const losses: number[] = []
    const store = await readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 1000, onDataLoss: ({ until }) => losses.push(until) }))
    t.teardown(() => store.close())
    const key = subject()
    t.strictSame(await store.psd2.read(key, { linked }, NOW - 10), { exempted: { count: 0, cents: 0 }, failures: [], linkedConsumed: false })
    t.equal(await store.psd2.completeSca(key, { ...linked, ttl: 600 }, NOW - 10), true)
    t.equal((await store.psd2.read(key, { linked }, NOW - 5)).linkedConsumed, true)
    await lose(server)
    t.ok(await waitUntil(() => store.ping(), 10_000), 'the store is back')
    const after = await store.psd2.read(key, { linked }, NOW)
    t.equal(after.linkedConsumed, undefined, 'not reported unspent')
    t.match(after.linkedUnavailable, /lost its data/, 'but unavailable')
    t.equal(losses.length, 1, 'the loss was reported')
    t.equal((await store.psd2.read(key, { linked }, NOW + 3600)).linkedUnavailable !== undefined, true, 'for as long as that authentication is asked about')
    t.match((await store.psd2.read(key, { linked: { authTime: NOW + PSD2_LOSS_MARGIN, txHash: 'tx-after' } }, NOW + 5)).linkedUnavailable, /lost its data/,
      'an authentication within the clock-skew margin of the loss cannot be told apart')
    t.strictSame(await store.psd2.read(key, { linked: { authTime: NOW + PSD2_LOSS_MARGIN + 1, txHash: 'tx-after' } }, NOW + PSD2_LOSS_MARGIN + 5),
      { exempted: { count: 0, cents: 0 }, failures: [], linkedConsumed: false }, 'a later authentication is checked again')
    t.ok((await store.read(key, { history: false, authTime: NOW - 1, onceOnlyTtl: 120 }, NOW + 10)).onceOnlyUnavailable, 'once-only reads see the same loss')
    return { store, losses }
  }

  t.test('restarted empty', async t => {
    await spendThenLose(t, server => server.restart())
  })

  t.test('FLUSHALL without a reconnect', async t => {
    await spendThenLose(t, async server => {
      const admin = new Redis(server.url)
      await admin.flushall()
      admin.disconnect()
    })
  })

  t.test('a pause that keeps the data is not a loss', async t => {
    const server = await startRedis(t)
    t.teardown(() => server.resume())
    const store = await readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 1000 }))
    t.teardown(() => store.close())
    const key = subject()
    await store.psd2.read(key, { linked }, NOW - 10)
    t.equal(await store.psd2.completeSca(key, { ...linked, ttl: 600 }, NOW - 10), true)
    server.pause()
    await new Promise(resolve => setTimeout(resolve, 300))
    server.resume()
    t.ok(await waitUntil(() => store.ping(), 5000))
    t.strictSame(await store.psd2.read(key, { linked }, NOW), { exempted: { count: 0, cents: 0 }, failures: [], linkedConsumed: true })
  })
})

t.test('standalone redis: every call rejects while Redis is away or hung, and recovers', async t => {
  if (!requireRedis(t)) return
  const server = await startRedis(t)
  t.teardown(() => server.resume())
  const store = await readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 200 }))
  t.teardown(() => store.close())
  const key = subject()
  const sca = { authTime: NOW, txHash: 'tx', ttl: 600 }
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['read', () => store.psd2.read(key, { linked: sca, payeeId: 'p', lockoutWindow: 900 }, NOW)],
    ['exempt', () => store.psd2.exempt(key, { cents: 100, limit: { count: 5, cents: 10_000 } }, NOW)],
    ['completeSca', () => store.psd2.completeSca(key, sca, NOW)],
    ['recordFailure', () => store.psd2.recordFailure(key, NOW, 900)]
  ]

  server.pause()
  for (const [name, fn] of calls) {
    const started = Date.now()
    await t.rejects(fn(), /timed out/, `hung: ${name} rejects at its deadline`)
    t.comment(`${name} rejected after ${Date.now() - started} ms (command timeout 200 ms)`)
  }
  server.resume()
  t.ok(await waitUntil(() => store.ping(), 5000))

  await server.stop()
  for (let round = 0; round < 2; round++) { // right after the stop, and once the client knows
    for (const [name, fn] of calls) {
      const started = Date.now()
      await t.rejects(fn(), `stopped: ${name} rejects`)
      t.comment(`${name} rejected after ${Date.now() - started} ms`)
    }
  }

  await server.restart()
  t.ok(await waitUntil(() => store.ping(), 5000), 'reconnects by itself')
  t.equal(await store.psd2.completeSca(key, sca, NOW), true, 'the scripts are loaded again on the empty server')
  t.equal(await store.psd2.exempt(key, { cents: 100 }, NOW), true)
  t.strictSame((await store.psd2.read(key, {}, NOW)).exempted, { count: 1, cents: 100 })
})

// The audit trail in a Redis Stream (docs/operations.md): batched writes, queries, trimming, step-up refs, an outage.
import t, { type Test } from 'tap'
import type { Cluster, Redis } from 'ioredis'
import type { DecisionAuditRecord as AuditRecord } from '../../src/audit/audit-log.js'
import { createRedisAuditLog } from '../../src/audit/redis-audit-log.js'
import { createRedisClient } from '../../src/signals/redis-history.js'
import { requireRedis, startRedis, startRedisCluster } from '../helpers/redis.js'

const T0 = Date.UTC(2026, 10, 22, 9, 0, 0)
const record = (i: number, over: Partial<AuditRecord> = {}): AuditRecord => ({
  at: T0 + i * 1000,
  event: i % 2 === 0 ? 'auth.allowed' : 'auth.step_up_initiated',
  decisionId: `d-${i}`,
  subject: `user-${i % 3}`,
  action: 'payments.payout',
  decision: i % 2 === 0 ? 'allow' : 'step_up',
  policies: [],
  ...over
})

/** A connected client (the audit log never queues commands while offline). */
const client = async (t: Test, options: Parameters<typeof createRedisClient>[0], ready = true): Promise<Redis | Cluster> => {
  const c = createRedisClient(options)
  c.on('error', () => {})
  t.teardown(() => { c.disconnect() })
  if (ready) await new Promise(resolve => c.once('ready', resolve))
  return c
}

if (requireRedis(t, { cluster: true })) {
  const redis = await startRedis(t)

  t.test('a batch is one script call; every record is its own stream entry, read back newest first', async t => {
    const c = await client(t, { url: redis.url, commandTimeoutMs: 1000 }) as Redis
    const audit = createRedisAuditLog(c, { maxEntries: 1000, prefix: 'batch:' })
    await c.config('RESETSTAT')
    for (let i = 0; i < 250; i++) audit.append(record(i, i === 7 ? { tenant: 'acme', detail: 'x' } : {}))
    await audit.flush()
    const stats = await c.info('commandstats')
    const calls = (cmd: string): number => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
    t.equal(calls('xadd'), 250, 'one stream entry per record')
    // 3 batches (100 + 100 + 50); ioredis sends EVAL once when the script is not cached yet.
    t.ok(calls('evalsha') + calls('eval') <= 4, `250 records, ${calls('evalsha')} EVALSHA + ${calls('eval')} EVAL`)
    t.equal(await c.xlen('batch:audit'), 250)

    const all = await audit.query({ limit: 1000 })
    t.equal(all.length, 250)
    t.equal(all[0]!.decisionId, 'd-249', 'newest first')
    t.same(all.find(e => e.decisionId === 'd-7'), { ...record(7, { tenant: 'acme', detail: 'x' }), at: new Date(T0 + 7000).toISOString() }, 'the record comes back whole, its time as ISO 8601')
    t.equal((await audit.query({ subject: 'user-1', event: 'auth.step_up_initiated', limit: 1000 })).length, all.filter(e => e.subject === 'user-1' && e.event === 'auth.step_up_initiated').length)
    t.same((await audit.query({ decisionId: 'd-42', limit: 10 })).map(e => e.decisionId), ['d-42'])
    t.equal((await audit.query({ limit: 5 })).length, 5, 'limit')
  })

  t.test('a query sees records still in the buffer; the stream stays bounded', async t => {
    const c = await client(t, { url: redis.url, commandTimeoutMs: 1000 }) as Redis
    const audit = createRedisAuditLog(c, { maxEntries: 100, prefix: 'trim:' })
    audit.append(record(1))
    t.same((await audit.query({ limit: 10 })).map(e => e.decisionId), ['d-1'], 'flushed before reading')
    for (let i = 0; i < 2000; i++) audit.append(record(i))
    await audit.flush()
    const length = await c.xlen('trim:audit')
    t.ok(length >= 100 && length < 400, `MAXLEN ~ 100 keeps about 100 entries (${length})`)
  })

  t.test('step-up references and once-only outcome claims', async t => {
    const audit = createRedisAuditLog(await client(t, { url: redis.url, commandTimeoutMs: 1000 }), { maxEntries: 100, prefix: 'refs:' })
    audit.rememberStepUp('d-1', { tenant: 'acme', subject: 'alice', action: 'payments.payout' })
    await new Promise(resolve => setTimeout(resolve, 50))
    t.same(await audit.findStepUp('d-1'), { tenant: 'acme', subject: 'alice', action: 'payments.payout' })
    t.equal(await audit.findStepUp('d-2'), undefined)
    t.equal(await audit.claimOutcome('d-1'), true)
    t.equal(await audit.claimOutcome('d-1'), false, 'an outcome is recorded once')
  })

  t.test('Redis down: appends are reported and dropped, never thrown into a decision', async t => {
    const down = await startRedis(t)
    const errors: string[] = []
    const audit = createRedisAuditLog(await client(t, { url: down.url, commandTimeoutMs: 200 }), { maxEntries: 100, onError: err => errors.push(err.message) })
    await down.stop()
    t.doesNotThrow(() => { for (let i = 0; i < 150; i++) audit.append(record(i)) })
    await audit.flush()
    t.ok(errors.length >= 1, `the failed batches were reported (${errors[0] ?? ''})`)
  })

  t.test('on a 3-node Redis Cluster', async t => {
    const cluster = await startRedisCluster(t)
    const audit = createRedisAuditLog(await client(t, { clusterNodes: cluster.nodes, commandTimeoutMs: 2000 }), { maxEntries: 1000 })
    for (let i = 0; i < 120; i++) audit.append(record(i))
    audit.rememberStepUp('d-1', { subject: 'bob', action: 'admin.users.delete' })
    await audit.flush()
    t.equal((await audit.query({ limit: 1000 })).length, 120)
    t.same(await audit.findStepUp('d-1'), { subject: 'bob', action: 'admin.users.delete' })
  })
}

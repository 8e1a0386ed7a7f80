// The service behind Redis Sentinel: real redis-sentinel processes, decisions shared through the
// master, and a failover (ordered, then a crash of the master) survived without failing open.
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createHistoryStore } from '../../src/signals/create-history.js'
import { createRedisClient } from '../../src/signals/redis-history.js'
import { requireRedis, startRedisSentinel } from '../helpers/redis.js'
import { ask, Clock, scenarioApp } from '../integration/scenarios.js'

if (requireRedis(t, { cluster: true })) {
  // Two failovers and a resync: sentinels poll every second, a demoted master resyncs in seconds.
  t.setTimeout(240_000)
  const geo = await openGeoLookup({})
  const sentinel = await startRedisSentinel(t)
  const config = loadConfig({
    REDIS_SENTINELS: sentinel.sentinels.map(n => `${n.host}:${n.port}`).join(','),
    REDIS_SENTINEL_NAME: sentinel.name,
    REDIS_COMMAND_TIMEOUT_MS: '200'
  })
  const store = createHistoryStore(config, pino({ level: 'silent' }))
  t.teardown(() => store.close())
  const clock = new Clock()
  const app = await scenarioApp(store, geo, clock)

  const known = { action: 'payments.payout', amr: ['pwd'], authAgo: 3600, device: 'desk' }
  const fresh = (device: string): typeof known => ({ ...known, device })

  /** Keeps asking about new devices until `pending` settles; any allow is a fail-open. */
  async function probeWhile<T> (t: Test, label: string, pending: Promise<T>): Promise<T> {
    let settled = false
    const done = pending.finally(() => { settled = true })
    for (let n = 0; !settled; n++) {
      const probe = await ask(app, clock, fresh(`during-${label}-${n}`))
      if (probe.decision === 'allow') t.fail(`${label}: a new device was allowed during the failover`)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    return done
  }

  /** PING tried for up to 5 s: one PING may outlast the 200 ms command timeout on a busy machine. */
  async function answersPingOf (ping: () => Promise<unknown>): Promise<boolean> {
    const until = Date.now() + 5000
    do {
      if (await ping().then(r => r === true || r === 'PONG', () => false)) return true
      await new Promise(resolve => setTimeout(resolve, 100))
    } while (Date.now() < until)
    return false
  }
  const answersPing = (): Promise<boolean> => answersPingOf(() => store.ping())

  /**
   * Asks until `known` is allowed three times in a row (the store is back and the client settled
   * on the new master: while it switches, a read may still fail closed once), failing on any
   * allow of a new device.
   */
  async function recover (t: Test, label: string, timeoutMs: number): Promise<number> {
    const started = Date.now()
    let n = 0
    let inRow = 0
    let last = ''
    while (Date.now() - started < timeoutMs) {
      // A device never seen must step up whatever the store does: an allow is a fail-open.
      const probe = await ask(app, clock, fresh(`never-seen-${label}-${n++}`))
      if (probe.decision === 'allow') t.fail(`${label}: a new device was allowed during the failover`)
      const answer = await ask(app, clock, known)
      inRow = answer.decision === 'allow' ? inRow + 1 : 0
      if (answer.decision !== 'allow') last = JSON.stringify(answer.reasons)
      if (inRow === 3) return Date.now() - started
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    throw new Error(`${label}: the service did not recover within ${timeoutMs} ms (last answer for the known device: ${last}; PING ${String(await store.ping())})`)
  }

  t.test('config: REDIS_SENTINELS makes a Redis history store through the sentinels', async t => {
    t.equal(store.kind, 'redis')
    t.same(config.redisSentinels, sentinel.sentinels)
    t.equal(await store.ping(), true)
  })

  t.test('decisions learn and read through the master the sentinels announce', async t => {
    t.equal((await ask(app, clock, { ...known, amr: ['pwd', 'otp'], authAgo: 0 })).decision, 'allow', 'learnt with a strong session')
    clock.advance(5)
    t.equal((await ask(app, clock, known)).decision, 'allow', 'known device, weak session: allowed')
    t.equal((await ask(app, clock, fresh('stranger'))).decision, 'step_up', 'a new device steps up')
  })

  t.test('a disconnect from the failover detector while reconnecting does not end the client for good', async t => {
    // What ioredis's failover detector does when +switch-master lands between two reconnect
    // attempts: it disconnects the connector while connect() is still asking the sentinels.
    const client = createRedisClient({ sentinels: sentinel.sentinels, sentinelName: sentinel.name, commandTimeoutMs: 200 })
    t.teardown(() => { client.disconnect() })
    client.on('error', () => {})
    const connector = (client as unknown as { connector: { disconnect: () => void } }).connector
    await new Promise(resolve => client.once('ready', resolve))
    const ended = new Promise(resolve => client.once('end', resolve))
    client.once('connecting', () => { connector.disconnect() })
    client.disconnect(true)
    await ended
    t.ok(await answersPingOf(() => client.ping()), 'the client connects again and answers PING')
    t.equal(client.status, 'ready')
  })

  t.test('SENTINEL FAILOVER: no fail-open, and the learnt device is still known after it', async t => {
    await sentinel.waitReplicated()
    const before = await sentinel.masterPort()
    const after = await probeWhile(t, 'ordered', sentinel.failover())
    const ms = await recover(t, 'ordered', 30_000)
    t.not(after, before, 'the master moved')
    // The replica had the data: recovery means the device is known on the new master.
    t.equal((await ask(app, clock, known)).decision, 'allow')
    t.ok(await answersPing(), 'the store answers PING through the new master')
    t.comment(`answers normal ${ms} ms after the sentinels announced the new master`)
  })

  t.test('the master killed: history fails closed during the outage, then the promoted replica serves', async t => {
    await sentinel.waitReplicated()
    const old = await sentinel.masterPort()
    const killed = sentinel.killMaster()
    // While the master is dead and not yet replaced, the known device cannot be checked: step up.
    await new Promise(resolve => setTimeout(resolve, 300))
    const during = await ask(app, clock, known)
    t.equal(during.decision, 'step_up', 'never allow while the store is away')
    t.ok(during.reasons.some(r => /unavailable/.test(r.detail ?? '')), 'the reason says the history is unavailable')
    const promoted = await probeWhile(t, 'crash', killed)
    t.not(promoted, old)
    const ms = await recover(t, 'crash', 30_000)
    t.equal((await ask(app, clock, fresh('stranger-2'))).decision, 'step_up')
    t.comment(`answers normal ${ms} ms after the new master was announced`)
    await sentinel.restartDataNode(old)
    await sentinel.waitReplicated(90_000)
    t.equal((await ask(app, clock, known)).decision, 'allow', 'still served after the old master came back as a replica')
  })

  t.test('REDIS_SENTINELS is validated and exclusive with the other Redis variables', async t => {
    t.throws(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1' }), /REDIS_SENTINELS.*host:port/)
    t.throws(() => loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_URL: 'redis://a:1' }), /REDIS_SENTINELS/)
    t.throws(() => loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'bad name' }), /REDIS_SENTINEL_NAME/)
    t.equal(loadConfig({ REDIS_SENTINELS: 'a:1' }).redisSentinelName, 'mymaster')
  })
}

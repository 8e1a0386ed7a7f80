/**
 * One contract for every HistoryStore (docs/policies.md#history, docs/failure-rules.md): the in-memory store, a real standalone
 * redis-server and a real 3-master Redis Cluster must behave the same. Redis-only cases: state
 * shared by two instances, one round trip per call, failing fast and recovering.
 */
import { createHash, randomUUID } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { CAPS, type HistoryStore, type SubjectKey } from '../../src/signals/history.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { createRedisHistoryStore } from '../../src/signals/redis-history.js'
import type { Location } from '../../src/engine/model.js'
import { readyStore, requireRedis, startRedis, startRedisCluster, waitUntil } from '../helpers/redis.js'

type T = Parameters<Parameters<typeof t.test>[0]>[0]

const DAY = 86400
const NOW = 1_700_000_000
const PARIS: Location = { latitude: 48.8566, longitude: 2.3522, accuracyKm: 20, country: 'FR', city: 'Paris' }

interface Admin {
  /** Commands counted by the servers since `reset`, summed over nodes (INFO commandstats). */
  reset: () => Promise<void>
  calls: () => Promise<Map<string, number>>
  /** Top-level commands (not issued by a script) the store's connections sent during `fn` (MONITOR). */
  topLevel?: (fn: () => Promise<unknown>) => Promise<string[]>
  close: () => Promise<void>
}

interface Backend {
  /** A new store instance; for Redis, a new client on the same server(s). */
  make: () => Promise<HistoryStore>
  /** Do two instances share their state? */
  shared: boolean
  admin?: Admin
}

let seq = 0
const subject = (tenant?: string): SubjectKey => ({ tenant, subject: `user-${++seq}-${randomUUID()}` })

const full = { history: true, deviceId: 'dev-1', country: 'FR', resource: 'payments' }

function contract (t: T, backend: Backend): void {
  const open = async (t: T): Promise<HistoryStore> => {
    const store = await backend.make()
    t.teardown(() => store.close())
    return store
  }

  t.test('an empty read knows nothing', async t => {
    const store = await open(t)
    const key = subject('acme')
    t.strictSame(await store.read(key, { ...full, authTime: NOW - 5 }, NOW), {
      snapshot: { deviceLastSeen: undefined, countryLastSeen: undefined, resourceLastSeen: undefined, lastLocation: undefined, hasHistory: false },
      consumed: false
    })
    t.strictSame(await store.read(key, { history: false }, NOW), {}, 'nothing asked, nothing read')
    t.strictSame(await store.read(key, { history: false, authTime: NOW }, NOW), { consumed: false }, 'once-only state alone')
  })

  t.test('record then read: device, country, resource and location', async t => {
    const store = await open(t)
    const key = subject('acme')
    await store.record(key, { deviceId: 'dev-1', country: 'FR', resource: 'payments', location: PARIS }, NOW, 30)
    t.strictSame(await store.read(key, full, NOW + 10), {
      snapshot: { deviceLastSeen: NOW, countryLastSeen: NOW, resourceLastSeen: NOW, lastLocation: { ...PARIS, at: NOW }, hasHistory: true }
    })
    const other = await store.read(key, { history: true, deviceId: 'dev-2', country: 'DE', resource: 'admin' }, NOW)
    t.strictSame(other.snapshot, { deviceLastSeen: undefined, countryLastSeen: undefined, resourceLastSeen: undefined, lastLocation: { ...PARIS, at: NOW }, hasHistory: true })
    const none = await store.read(key, { history: true }, NOW)
    t.equal(none.snapshot?.hasHistory, true, 'hasHistory without any value asked')
    t.equal(none.snapshot?.deviceLastSeen, undefined)

    await store.record(key, { deviceId: 'dev-1' }, NOW + 3600, 30)
    t.equal((await store.read(key, full, NOW + 3600)).snapshot?.deviceLastSeen, NOW + 3600, 'refreshed')
    t.equal((await store.read(key, full, NOW + 3600)).snapshot?.countryLastSeen, NOW, 'the rest untouched')

    const onlyLocation = subject('acme')
    await store.record(onlyLocation, { location: PARIS }, NOW, 30)
    t.equal((await store.read(onlyLocation, full, NOW)).snapshot?.hasHistory, true, 'a location alone is history')
  })

  t.test('fractional now (the service passes ms / 1000) is kept to the second', async t => {
    const store = await open(t)
    const key = subject()
    await store.record(key, { deviceId: 'dev-1' }, NOW + 0.75, 30)
    const seen = (await store.read(key, full, NOW + 1)).snapshot?.deviceLastSeen
    t.ok(seen !== undefined && Math.abs(seen - (NOW + 0.75)) < 1, `last seen ${seen}`)
  })

  t.test('tenants are isolated, the default tenant from every named one', async t => {
    const store = await open(t)
    const id = `alice-${randomUUID()}`
    const a: SubjectKey = { tenant: 'tenant-a', subject: id }
    const b: SubjectKey = { tenant: 'tenant-b', subject: id }
    const def: SubjectKey = { tenant: undefined, subject: id }
    const empty: SubjectKey = { tenant: '', subject: id }
    await store.record(a, { deviceId: 'dev-1', country: 'FR', location: PARIS }, NOW, 30)
    t.ok(await store.consume(a, 1234, NOW, 120))
    for (const [name, key] of [['tenant b', b], ['default tenant', def], ['empty tenant name', empty]] as const) {
      const read = await store.read(key, { ...full, authTime: 1234 }, NOW)
      t.equal(read.snapshot?.hasHistory, false, `${name}: no history`)
      t.equal(read.snapshot?.deviceLastSeen, undefined, `${name}: no device`)
      t.equal(read.consumed, false, `${name}: not consumed`)
    }
    await store.record(def, { deviceId: 'dev-9' }, NOW, 30)
    t.equal((await store.read(a, { history: true, deviceId: 'dev-9' }, NOW)).snapshot?.deviceLastSeen, undefined, 'default does not leak into a')
    t.equal((await store.read(def, { history: true, deviceId: 'dev-9' }, NOW)).snapshot?.deviceLastSeen, NOW)
    // A tenant and subject that concatenate to the same string stay apart.
    await store.record({ tenant: 'x', subject: 'y:z' }, { deviceId: 'dev-c' }, NOW, 30)
    t.equal((await store.read({ tenant: 'x:y', subject: 'z' }, { history: true, deviceId: 'dev-c' }, NOW)).snapshot?.deviceLastSeen, undefined)
  })

  t.test('entries older than the retention are pruned on write', async t => {
    const store = await open(t)
    const key = subject('acme')
    const old = NOW - 40 * DAY
    await store.record(key, { deviceId: 'old-dev', country: 'FR', resource: 'old-res', location: PARIS }, old, 30)
    t.equal((await store.read(key, { history: true, deviceId: 'old-dev' }, old)).snapshot?.deviceLastSeen, old)
    await store.record(key, { deviceId: 'new-dev' }, NOW, 30)
    const read = await store.read(key, { history: true, deviceId: 'old-dev', country: 'FR', resource: 'old-res' }, NOW)
    t.strictSame(read.snapshot, { deviceLastSeen: undefined, countryLastSeen: undefined, resourceLastSeen: undefined, lastLocation: undefined, hasHistory: true })
    t.equal((await store.read(key, { history: true, deviceId: 'new-dev' }, NOW)).snapshot?.deviceLastSeen, NOW)
    // Within the retention is kept.
    await store.record(key, { country: 'DE' }, NOW - 29 * DAY, 30)
    await store.record(key, { deviceId: 'new-dev' }, NOW, 30)
    t.equal((await store.read(key, { history: true, country: 'DE' }, NOW)).snapshot?.countryLastSeen, NOW - 29 * DAY)
  })

  t.test('caps keep the newest entries of each kind', async t => {
    const store = await open(t)
    const key = subject('acme')
    const n = CAPS.resources + 5
    for (let i = 0; i < n; i++) {
      await store.record(key, {
        resource: `res-${i}`,
        ...(i < CAPS.devices + 5 ? { deviceId: `dev-${i}` } : {}),
        ...(i < CAPS.countries + 5 ? { country: `C${i}` } : {})
      }, NOW + i, 30)
    }
    const seen = async (q: { deviceId?: string, country?: string, resource?: string }): Promise<number | undefined> => {
      const s = (await store.read(key, { history: true, ...q }, NOW + n)).snapshot
      return s?.deviceLastSeen ?? s?.countryLastSeen ?? s?.resourceLastSeen
    }
    const lastDevice = CAPS.devices + 4
    t.equal(await seen({ deviceId: `dev-${lastDevice}` }), NOW + lastDevice, 'newest device kept')
    t.equal(await seen({ deviceId: 'dev-5' }), NOW + 5, `the ${CAPS.devices}th newest device kept`)
    t.equal(await seen({ deviceId: 'dev-4' }), undefined, 'older devices dropped')
    t.equal(await seen({ deviceId: 'dev-0' }), undefined, 'oldest device dropped')
    let devices = 0
    for (let i = 0; i < CAPS.devices + 5; i++) if (await seen({ deviceId: `dev-${i}` }) !== undefined) devices++
    t.equal(devices, CAPS.devices, `exactly ${CAPS.devices} devices`)
    t.equal(await seen({ country: `C${CAPS.countries + 4}` }), NOW + CAPS.countries + 4, 'newest country kept')
    t.equal(await seen({ country: 'C4' }), undefined, 'older countries dropped')
    t.equal(await seen({ country: 'C5' }), NOW + 5)
    t.equal(await seen({ resource: `res-${n - 1}` }), NOW + n - 1, 'newest resource kept')
    t.equal(await seen({ resource: 'res-4' }), undefined, 'older resources dropped')
    t.equal(await seen({ resource: 'res-5' }), NOW + 5)
    // Refreshing an old entry saves it from the cap.
    await store.record(key, { deviceId: 'dev-5' }, NOW + n, 30)
    await store.record(key, { deviceId: 'dev-new' }, NOW + n + 1, 30)
    t.equal(await seen({ deviceId: 'dev-5' }), NOW + n, 'refreshed entry kept')
    t.equal(await seen({ deviceId: 'dev-6' }), undefined, 'the now oldest dropped instead')
  })

  t.test('consume is once-only per authentication time', async t => {
    const store = await open(t)
    const key = subject('acme')
    t.equal(await store.consume(key, NOW - 30, NOW, 120), true, 'first use')
    t.equal(await store.consume(key, NOW - 30, NOW + 1, 120), false, 'second use')
    t.equal(await store.consume(key, NOW - 20, NOW + 1, 120), true, 'another authentication is independent')
    t.equal((await store.read(key, { history: false, authTime: NOW - 30 }, NOW + 2)).consumed, true)
    t.equal((await store.read(key, { history: false, authTime: NOW - 10 }, NOW + 2)).consumed, false)
    const both = await store.read(key, { ...full, authTime: NOW - 20 }, NOW + 2)
    t.equal(both.consumed, true, 'read with history and once-only together')
    t.equal(both.snapshot?.hasHistory, false, 'consuming is not history')
  })

  t.test('the location encoding preserves every member', async t => {
    const store = await open(t)
    const cases: Location[] = [
      { latitude: -23.5505201234567, longitude: -46.6333089876543, accuracyKm: 0.5, country: 'BR', city: 'São Paulo | Zona Sul 🌎' },
      { latitude: 0, longitude: 0, accuracyKm: 1000 },
      { latitude: 89.999999, longitude: -179.999999, accuracyKm: 3.25, country: 'X|Y', city: '|' },
      { latitude: 35.6895, longitude: 139.6917, accuracyKm: 10, country: 'JP', city: '東京 "quoted" \\ [1,2]' },
      { latitude: 1, longitude: 2, accuracyKm: 3, city: '' }
    ]
    for (const location of cases) {
      const key = subject()
      await store.record(key, { location }, NOW, 30)
      t.strictSame((await store.read(key, { history: true }, NOW)).snapshot?.lastLocation, { ...location, at: NOW }, JSON.stringify(location))
    }
  })

  t.test('ids with separators and odd characters stay apart', async t => {
    const store = await open(t)
    const key: SubjectKey = { tenant: 'te}n{ant', subject: 'sub}ject{' }
    const ids = ['d:x', 'x', 'c:FR', 'l', '', 'ü🌍', 'a|b']
    for (const [i, id] of ids.entries()) await store.record(key, { deviceId: id }, NOW + i, 30)
    for (const [i, id] of ids.entries()) {
      t.equal((await store.read(key, { history: true, deviceId: id, country: id, resource: id }, NOW)).snapshot?.deviceLastSeen, NOW + i, `device ${JSON.stringify(id)}`)
    }
    t.equal((await store.read(key, { history: true, country: 'FR' }, NOW)).snapshot?.countryLastSeen, undefined, 'a device "c:FR" is not a country')
    t.equal((await store.read(key, { history: true }, NOW)).snapshot?.lastLocation, undefined, 'a device "l" is not a location')
  })

  if (backend.shared) {
    t.test('two instances share history and once-only state', async t => {
      const one = await open(t)
      const two = await open(t)
      const key = subject('acme')
      t.equal(await one.consume(key, NOW - 1, NOW, 120), true)
      t.equal(await two.consume(key, NOW - 1, NOW, 120), false, 'the other instance sees it consumed')
      t.equal((await two.read(key, { history: false, authTime: NOW - 1 }, NOW)).consumed, true)
      await two.record(key, { deviceId: 'dev-1', location: PARIS }, NOW, 30)
      t.equal((await one.read(key, full, NOW)).snapshot?.deviceLastSeen, NOW)
    })
  }

  const admin = backend.admin
  if (admin) {
    t.test('one round trip per read and per record', async t => {
      const store = await open(t)
      const key = subject('acme')
      // Scripts internally call these; they are counted by INFO commandstats but are not round trips.
      const scripted = new Set(['hlen', 'hmget', 'exists', 'hset', 'hgetall', 'hdel', 'expire', 'get', 'set']) // get, set: the epoch check of a once-only read
      const management = new Set(['info', 'config', 'config|resetstat', 'cluster', 'cluster|slots', 'cluster|info', 'cluster|shards', 'cluster|nodes', 'hello', 'client', 'client|setinfo', 'client|setname', 'ping', 'select', 'command', 'command|docs', 'monitor'])
      await store.record(key, { deviceId: 'warm-up' }, NOW, 30) // the first call on a connection may EVAL instead of EVALSHA
      await store.read(key, full, NOW)

      const check = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
        await admin.reset()
        await fn()
        const calls = await admin.calls()
        const scripts = (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0)
        t.equal(scripts, 1, `${name}: exactly one EVALSHA/EVAL`)
        const others = [...calls].filter(([cmd]) => cmd !== 'evalsha' && cmd !== 'eval' && !management.has(cmd) && !scripted.has(cmd))
        t.strictSame(others, [], `${name}: no other data command`)
        if (admin.topLevel) t.equal((await admin.topLevel(fn)).length, 1, `${name}: one command on the wire (MONITOR)`)
      }
      await check('read', () => store.read(key, { ...full, authTime: NOW }, NOW))
      await check('read without once-only', () => store.read(key, full, NOW))
      await check('record', () => store.record(key, { deviceId: 'dev-2', country: 'FR', resource: 'x', location: PARIS }, NOW, 30))

      await admin.reset()
      await store.read(key, { history: false }, NOW)
      await store.record(key, {}, NOW, 30)
      const calls = [...await admin.calls()].filter(([cmd]) => !management.has(cmd))
      t.strictSame(calls, [], 'nothing asked, nothing sent')
    })
  }
}

// ---- backends -------------------------------------------------------------------------------

t.test('memory store', async t => {
  contract(t, { make: async () => createMemoryHistoryStore({ maxSubjects: 10_000 }), shared: false })
})

const parseCommandStats = (info: string, into: Map<string, number>): void => {
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) into.set(m[1]!, (into.get(m[1]!) ?? 0) + Number(m[2]))
}

const adminFor = (clients: Redis[], standalone: boolean): Admin => ({
  reset: async () => { for (const c of clients) await c.config('RESETSTAT') },
  calls: async () => {
    const out = new Map<string, number>()
    for (const c of clients) parseCommandStats(await c.info('commandstats'), out)
    return out
  },
  ...(standalone
    ? {
        topLevel: async (fn: () => Promise<unknown>) => {
          const seen: string[] = []
          const marker = `marker-${randomUUID()}`
          const monitor = await clients[0]!.monitor()
          let sawMarker: () => void = () => {}
          const markerSeen = new Promise<void>(resolve => { sawMarker = resolve })
          monitor.on('monitor', (_time: string, args: string[], source: string) => {
            if (args[1] === marker) sawMarker()
            else if (source !== 'lua' && !['info', 'config', 'ping'].includes(String(args[0]).toLowerCase())) seen.push(args.join(' '))
          })
          try {
            await fn()
            await clients[0]!.ping(marker)
            await markerSeen
          } finally {
            monitor.disconnect()
          }
          return seen
        }
      }
    : {}),
  close: async () => { for (const c of clients) c.disconnect() }
})

t.test('standalone redis-server', async t => {
  if (!requireRedis(t)) return
  const server = await startRedis(t)
  const keyPrefix = `test-${randomUUID().slice(0, 8)}:`
  const admin = adminFor([new Redis(server.url)], true)
  t.teardown(() => admin.close())
  contract(t, {
    make: () => readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 1000, keyPrefix })),
    shared: true,
    admin
  })

  t.test('key layout, expiry and memory per subject', async t => {
    const redis = new Redis(server.url)
    t.teardown(() => redis.disconnect())
    const store = await readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 1000 }))
    t.teardown(() => store.close())
    const key = subject('acme')
    const h = createHash('sha256').update(`t:4:acme\u0000${key.subject}`).digest('hex').slice(0, 32)
    const hashKey = `stepup:h:{${h}}`
    for (let i = 0; i < 5; i++) await store.record(key, { deviceId: randomUUID() }, NOW + i, 400)
    for (const country of ['FR', 'DE', 'US']) await store.record(key, { country }, NOW + 10, 400)
    await store.record(key, { location: PARIS }, NOW + 20, 400)
    t.equal(await redis.hlen(hashKey), 9, 'one hash: 5 devices, 3 countries, a location')
    t.equal(await redis.hget(hashKey, 'c:FR'), String(NOW + 10))
    t.strictSame(JSON.parse((await redis.hget(hashKey, 'l'))!), [NOW + 20, PARIS.latitude, PARIS.longitude, PARIS.accuracyKm, 'FR', 'Paris'])
    const ttl = await redis.ttl(hashKey)
    t.ok(ttl > 399 * DAY && ttl <= 400 * DAY, `expires with the retention (${ttl} s)`)
    await store.consume(key, 1234, NOW, 120)
    const onceTtl = await redis.ttl(`stepup:o:{${h}}:1234`)
    t.ok(onceTtl > 100 && onceTtl <= 120, `once-only key expires (${onceTtl} s)`)
    t.strictSame((await redis.keys(`stepup:*{${h}}*`)).sort(), [hashKey, `stepup:o:{${h}}:1234`], 'nothing else')
    const def = createHash('sha256').update(`\u0000\u0000${key.subject}`).digest('hex').slice(0, 32)
    await store.record({ tenant: undefined, subject: key.subject }, { deviceId: 'd' }, NOW, 30)
    t.equal(await redis.exists(`stepup:h:{${def}}`), 1, 'default tenant key')
    const bytes = Number(await redis.memory('USAGE', hashKey))
    t.comment(`MEMORY USAGE of a subject with 5 devices (uuid ids), 3 countries and a location: ${bytes} bytes`)
    t.ok(bytes > 0 && bytes < 1024, `${bytes} bytes per subject`)
  })
})

t.test('redis cluster (3 masters)', async t => {
  if (!requireRedis(t, { cluster: true })) return
  const cluster = await startRedisCluster(t)
  const keyPrefix = `test-${randomUUID().slice(0, 8)}:`
  const admin = adminFor(cluster.nodes.map(n => new Redis(n.port, n.host)), false)
  t.teardown(() => admin.close())
  contract(t, {
    make: async () => {
      const store = await readyStore(createRedisHistoryStore({ clusterNodes: cluster.nodes, commandTimeoutMs: 1000, keyPrefix }))
      if (store.kind !== 'redis-cluster') throw new Error(`expected a cluster store, got ${store.kind}`)
      return store
    },
    shared: true,
    admin
  })
})

t.test('standalone redis: fails fast while away, recovers by itself', async t => {
  if (!requireRedis(t)) return
  const server = await startRedis(t)
  const store = await readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 200 }))
  t.teardown(() => store.close())
  const key = subject('acme')
  await store.record(key, { deviceId: 'dev-1' }, NOW, 30)
  t.equal((await store.read(key, full, NOW)).snapshot?.deviceLastSeen, NOW)

  await server.stop()
  const bound = 2000
  const timed = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
    const started = Date.now()
    await t.rejects(fn(), `${name} rejects`)
    const ms = Date.now() - started
    t.ok(ms < bound, `${name} rejected in ${ms} ms (< ${bound})`)
  }
  for (let round = 0; round < 2; round++) { // right after the stop, and once the client knows
    await timed('read', () => store.read(key, { ...full, authTime: NOW }, NOW))
    await timed('read of the once-only state', () => store.read(key, { history: false, authTime: NOW }, NOW))
    await timed('record', () => store.record(key, { deviceId: 'dev-2' }, NOW, 30))
    await timed('consume', () => store.consume(key, NOW, NOW, 120))
    const started = Date.now()
    t.equal(await store.ping(), false, 'ping says no')
    t.ok(Date.now() - started < bound, 'ping answers quickly')
  }

  // A store created while Redis is away connects by itself once it is back.
  const late = createRedisHistoryStore({ url: server.url, commandTimeoutMs: 200 })
  t.teardown(() => late.close())
  t.equal(await late.ping(), false)

  await server.restart()
  t.ok(await waitUntil(() => store.ping(), 5000), 'the same instance reconnects')
  t.ok(await waitUntil(() => late.ping(), 5000), 'a store created while Redis was away connects')
  // The restarted server is empty (no persistence): the scripts are reloaded transparently.
  t.equal((await store.read(key, full, NOW)).snapshot?.hasHistory, false)
  await store.record(key, { deviceId: 'dev-3' }, NOW, 30)
  t.equal((await late.read(key, { history: true, deviceId: 'dev-3' }, NOW)).snapshot?.deviceLastSeen, NOW)
  t.equal(await store.consume(key, NOW, NOW, 120), true)
  t.equal(await late.consume(key, NOW, NOW, 120), false)
})

t.test('standalone redis: a hung server times out within the command timeout', async t => {
  if (!requireRedis(t)) return
  const server = await startRedis(t)
  t.teardown(() => server.resume())
  const store = await readyStore(createRedisHistoryStore({ url: server.url, commandTimeoutMs: 200 }))
  t.teardown(() => store.close())
  const key = subject('acme')
  server.pause()
  const bound = 2000
  for (const [name, fn] of [
    ['read', () => store.read(key, { ...full, authTime: NOW }, NOW)],
    ['record', () => store.record(key, { deviceId: 'dev-2' }, NOW, 30)],
    ['consume', () => store.consume(key, NOW, NOW, 120)]
  ] as const) {
    const started = Date.now()
    await t.rejects(async () => { await fn() }, /timed out/i, `${name} rejects with a timeout`)
    const ms = Date.now() - started
    t.ok(ms >= 150 && ms < bound, `${name} rejected in ${ms} ms (timeout 200 ms)`)
  }
  t.equal(await store.ping(), false, 'ping says no')
  server.resume()
  t.ok(await waitUntil(() => store.ping(), 5000), 'answers again once the server does')
  t.equal(await store.consume(key, NOW - 1, NOW, 120), true)
})

t.test('redis cluster: a lost master never makes a call hang', async t => {
  if (!requireRedis(t, { cluster: true })) return
  const cluster = await startRedisCluster(t)
  const store = await readyStore(createRedisHistoryStore({ clusterNodes: cluster.nodes, commandTimeoutMs: 200 }))
  t.teardown(() => store.close())
  // Enough subjects that some live on the master about to be lost.
  const victim = new Redis(cluster.nodes[1]!.port, cluster.nodes[1]!.host)
  const keys: SubjectKey[] = []
  while (keys.length < 10 || (await victim.dbsize() < 2 && keys.length < 200)) {
    const key = subject('acme')
    await store.record(key, { deviceId: 'dev-1' }, NOW, 30)
    keys.push(key)
  }
  victim.disconnect()
  await cluster.stopNode(1)
  const bound = 2000
  let failed = 0
  let slowest = 0
  for (const key of keys) {
    for (const fn of [
      () => store.read(key, full, NOW),
      () => store.record(key, { deviceId: 'dev-2' }, NOW, 30),
      () => store.consume(key, NOW, NOW, 120)
    ]) {
      const started = Date.now()
      const outcome = await fn().then(() => 'ok', () => 'rejected')
      if (outcome === 'rejected') failed++
      slowest = Math.max(slowest, Date.now() - started)
    }
  }
  // Without replicas the cluster soon reports CLUSTERDOWN for every slot; until then only the
  // lost master's slots fail. Either way: rejected, and quickly.
  t.ok(failed > 0, `calls reject (${failed} of ${keys.length * 3})`)
  t.ok(slowest < bound, `the slowest call settled in ${slowest} ms (< ${bound})`)
  t.equal(typeof await store.ping(), 'boolean', 'ping settles')
})

t.test('a new store serves its first call without being told to connect', async t => {
  if (!requireRedis(t, { cluster: true })) return
  const server = await startRedis(t)
  const cluster = await startRedisCluster(t)
  for (const [name, options] of [
    ['standalone', { url: server.url }],
    ['cluster', { clusterNodes: cluster.nodes }]
  ] as const) {
    const store = createRedisHistoryStore({ ...options, commandTimeoutMs: 1000 })
    t.teardown(() => store.close())
    const key = subject('acme')
    t.equal(await store.consume(key, NOW, NOW, 120), true, `${name}: the first call waits for the connection under way`)
    t.equal((await store.read(key, { history: false, authTime: NOW }, NOW)).consumed, true)
  }
})

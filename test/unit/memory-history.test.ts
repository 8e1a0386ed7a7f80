import t from 'tap'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'

const NOW = 1_800_000_000
const known = async (store: ReturnType<typeof createMemoryHistoryStore>, subject: string): Promise<boolean> =>
  (await store.read({ tenant: undefined, subject }, { history: true, deviceId: 'laptop' }, NOW)).snapshot?.deviceLastSeen !== undefined

t.test('bounded by maxSubjects: the least recently used subjects go first, a busy one stays', async t => {
  const store = createMemoryHistoryStore({ maxSubjects: 8 })
  for (let i = 0; i < 8; i++) await store.record({ tenant: undefined, subject: `s${i}` }, { deviceId: 'laptop' }, NOW, 30)
  for (let i = 8; i < 40; i++) {
    t.ok(await known(store, 's0'), `s0 still known before s${i} arrives`)
    await store.record({ tenant: undefined, subject: `s${i}` }, { deviceId: 'laptop' }, NOW, 30)
  }
  let kept = 0
  for (let i = 0; i < 40; i++) if (await known(store, `s${i}`)) kept++
  t.equal(kept, 8, 'never more than maxSubjects')
  t.notOk(await known(store, 's1'), 'an idle early subject was dropped')
  t.ok(await known(store, 's39'), 'the newest is kept')
})

t.test('tenants keep separate histories', async t => {
  const store = createMemoryHistoryStore({ maxSubjects: 100 })
  await store.record({ tenant: 'a', subject: 'u' }, { deviceId: 'laptop' }, NOW, 30)
  t.ok((await store.read({ tenant: 'a', subject: 'u' }, { history: true, deviceId: 'laptop' }, NOW)).snapshot?.deviceLastSeen)
  t.notOk((await store.read({ tenant: 'b', subject: 'u' }, { history: true, deviceId: 'laptop' }, NOW)).snapshot?.deviceLastSeen)
  t.notOk(await known(store, 'u'), 'nor the default tenant')
})

t.test('a once-only mark outlives the eviction of its subject (no replay by flooding subjects)', async t => {
  const store = createMemoryHistoryStore({ maxSubjects: 4 })
  const victim = { tenant: undefined, subject: 'victim' }
  await store.record(victim, { deviceId: 'laptop' }, NOW, 30)
  t.equal(await store.consume(victim, NOW - 5, NOW, 90), true, 'first use')
  for (let i = 0; i < 50; i++) await store.record({ tenant: undefined, subject: `flood-${i}` }, { deviceId: 'x' }, NOW, 30)
  t.notOk(await known(store, 'victim'), 'the subject itself was evicted')
  t.equal(await store.consume(victim, NOW - 5, NOW + 10, 90), false, 'the authentication is still used up')
  t.same((await store.read(victim, { history: false, authTime: NOW - 5 }, NOW + 10)).consumed, true)
  t.equal(await store.consume(victim, NOW - 5, NOW + 91, 90), true, 'after the TTL the mark is gone')
})

t.test('past maxConsumedMarks, consumption fails (closed) instead of forgetting a mark', async t => {
  const store = createMemoryHistoryStore({ maxSubjects: 100, maxConsumedMarks: 3 })
  for (let i = 0; i < 3; i++) t.equal(await store.consume({ tenant: undefined, subject: `u${i}` }, NOW, NOW, 90), true)
  await t.rejects(store.consume({ tenant: undefined, subject: 'u3' }, NOW, NOW, 90), /too many once-only marks/)
  t.equal(await store.consume({ tenant: undefined, subject: 'u0' }, NOW, NOW, 90), false, 'existing marks still hold')
  t.equal(await store.consume({ tenant: undefined, subject: 'u3' }, NOW, NOW + 91, 90), true, 'expired marks make room')
})

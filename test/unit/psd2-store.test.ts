// The payment state of the in-memory history store: the shared contract (also run against Redis
// and Redis Cluster in test/integration/psd2-store-redis.test.ts), then expiry with the `now`
// argument and the bounds of memory.
import t from 'tap'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { PSD2_TTL } from '../../src/signals/psd2.js'
import { NOW, psd2Contract, subject } from '../helpers/psd2-contract.js'

t.test('contract', async t => {
  psd2Contract(t, { make: async () => createMemoryHistoryStore({ maxSubjects: 10_000 }), shared: false })
})

t.test('expiry follows the now argument', async t => {
  const { psd2 } = createMemoryHistoryStore({ maxSubjects: 100 })

  t.test('exemption counters: 400 days after the last counted payment', async t => {
    const key = subject()
    await psd2.exempt(key, { cents: 100 }, NOW)
    t.strictSame((await psd2.read(key, {}, NOW + PSD2_TTL - 1)).exempted, { count: 1, cents: 100 })
    t.strictSame((await psd2.read(key, {}, NOW + PSD2_TTL)).exempted, { count: 0, cents: 0 }, 'expired')
    await psd2.exempt(key, { cents: 100 }, NOW + 10)
    await psd2.exempt(key, { cents: 50 }, NOW + 1000)
    t.strictSame((await psd2.read(key, {}, NOW + PSD2_TTL + 999)).exempted, { count: 3, cents: 250 }, 'renewed by every write')
    t.strictSame((await psd2.read(key, {}, NOW + PSD2_TTL + 1000)).exempted, { count: 0, cents: 0 })

    const limited = subject()
    const limit = { count: 5, cents: 10_000 }
    for (let i = 0; i < 5; i++) await psd2.exempt(limited, { cents: 100, limit }, NOW)
    t.equal(await psd2.exempt(limited, { cents: 100, limit }, NOW + PSD2_TTL - 1), false)
    t.equal(await psd2.exempt(limited, { cents: 100, limit }, NOW + PSD2_TTL), true, 'counting starts again after the expiry')
    t.strictSame((await psd2.read(limited, {}, NOW + PSD2_TTL)).exempted, { count: 1, cents: 100 })
  })

  t.test('trusted payees: the list expires 400 days after its last addition', async t => {
    const key = subject()
    await psd2.completeSca(key, { authTime: NOW, txHash: 'tx-1', ttl: 600, trustPayeeId: 'payee-a' }, NOW)
    t.equal((await psd2.read(key, { payeeId: 'payee-a' }, NOW + PSD2_TTL - 1)).trustedPayee, true)
    t.equal((await psd2.read(key, { payeeId: 'payee-a' }, NOW + PSD2_TTL)).trustedPayee, false, 'expired')
    await psd2.completeSca(key, { authTime: NOW, txHash: 'tx-2', ttl: 600, trustPayeeId: 'payee-b' }, NOW + 1000)
    t.equal((await psd2.read(key, { payeeId: 'payee-a' }, NOW + PSD2_TTL + 999)).trustedPayee, true, 'renewed by an addition')
    t.equal((await psd2.read(key, { payeeId: 'payee-a' }, NOW + PSD2_TTL + 1000)).trustedPayee, false)
    await psd2.completeSca(key, { authTime: NOW, txHash: 'tx-3', ttl: 600, trustPayeeId: 'payee-c' }, NOW + PSD2_TTL + 2000)
    t.equal((await psd2.read(key, { payeeId: 'payee-b' }, NOW + PSD2_TTL + 2000)).trustedPayee, false, 'an addition after the expiry starts a new list')
    t.equal((await psd2.read(key, { payeeId: 'payee-c' }, NOW + PSD2_TTL + 2000)).trustedPayee, true)
  })

  t.test('a spent SCA: remembered for its ttl', async t => {
    const key = subject()
    const sca = { authTime: NOW - 10, txHash: 'tx', ttl: 300 }
    t.equal(await psd2.completeSca(key, sca, NOW), true)
    t.equal((await psd2.read(key, { linked: sca }, NOW + 299)).linkedConsumed, true)
    t.equal(await psd2.completeSca(key, sca, NOW + 299), false)
    t.equal((await psd2.read(key, { linked: sca }, NOW + 300)).linkedConsumed, false, 'forgotten after the ttl')
    t.equal(await psd2.completeSca(key, sca, NOW + 300), true, 'and can be spent again (the caller refuses it as too old by then)')
  })

  t.test('failures: gone a window after the last one', async t => {
    const key = subject()
    await psd2.recordFailure(key, NOW, 900)
    await psd2.recordFailure(key, NOW + 100, 900)
    t.strictSame((await psd2.read(key, { lockoutWindow: 5000 }, NOW + 999)).failures, [NOW, NOW + 100], 'a wider asked window sees both')
    t.strictSame((await psd2.read(key, { lockoutWindow: 5000 }, NOW + 1000)).failures, [], 'expired with the last write')
  })
})

t.test('bounded memory', async t => {
  t.test('payment state shares the subject cap; a spent SCA outlives the eviction of its subject', async t => {
    const store = createMemoryHistoryStore({ maxSubjects: 4 })
    const victim = subject()
    t.equal(await store.psd2.completeSca(victim, { authTime: NOW - 5, txHash: 'tx', ttl: 600 }, NOW), true)
    const flood = Array.from({ length: 50 }, () => subject())
    for (const key of flood) await store.psd2.exempt(key, { cents: 1 }, NOW)
    let kept = 0
    for (const key of flood) if ((await store.psd2.read(key, {}, NOW)).exempted.count === 1) kept++
    t.equal(kept, 4, 'never more subjects than maxSubjects')
    t.equal((await store.psd2.read(flood[49]!, {}, NOW)).exempted.count, 1, 'the newest is kept')
    t.equal(await store.psd2.completeSca(victim, { authTime: NOW - 5, txHash: 'tx', ttl: 600 }, NOW + 10), false, 'still spent after the flood')
    t.equal((await store.psd2.read(victim, { linked: { authTime: NOW - 5, txHash: 'tx' } }, NOW + 10)).linkedConsumed, true)
  })

  t.test('past maxSpentMarks, completing an SCA fails (closed) instead of forgetting a mark', async t => {
    const { psd2 } = createMemoryHistoryStore({ maxSubjects: 100, maxSpentMarks: 3 })
    const key = subject()
    for (let i = 0; i < 3; i++) t.equal(await psd2.completeSca(key, { authTime: NOW, txHash: `tx-${i}`, ttl: 60 + i * 100 }, NOW), true)
    await t.rejects(psd2.completeSca(key, { authTime: NOW, txHash: 'tx-3', ttl: 60 }, NOW), /too many spent SCA marks/)
    t.equal(await psd2.completeSca(key, { authTime: NOW, txHash: 'tx-2', ttl: 60 }, NOW + 1), false, 'existing marks still hold')
    // tx-0 expired at NOW + 60, tx-1 (NOW + 160) not yet.
    t.equal(await psd2.completeSca(key, { authTime: NOW, txHash: 'tx-3', ttl: 60 }, NOW + 61), true, 'an expired mark makes room')
    await t.rejects(psd2.completeSca(key, { authTime: NOW, txHash: 'tx-4', ttl: 60 }, NOW + 62), /too many spent SCA marks/)
    t.equal(await psd2.completeSca(key, { authTime: NOW, txHash: 'tx-1', ttl: 60 }, NOW + 62), false, 'still spent')
  })

  t.test('payment state is not history', async t => {
    const store = createMemoryHistoryStore({ maxSubjects: 100 })
    const key = subject()
    await store.psd2.exempt(key, { cents: 1 }, NOW)
    await store.psd2.recordFailure(key, NOW, 900)
    await store.psd2.completeSca(key, { authTime: NOW, txHash: 'tx', ttl: 60, trustPayeeId: 'p' }, NOW)
    t.equal((await store.read(key, { history: true }, NOW)).snapshot?.hasHistory, false)
  })

  t.test('close forgets everything', async t => {
    const store = createMemoryHistoryStore({ maxSubjects: 100 })
    const key = subject()
    await store.psd2.completeSca(key, { authTime: NOW, txHash: 'tx', ttl: 60 }, NOW)
    await store.psd2.exempt(key, { cents: 1 }, NOW)
    await store.close()
    t.strictSame(await store.psd2.read(key, { linked: { authTime: NOW, txHash: 'tx' } }, NOW), { exempted: { count: 0, cents: 0 }, failures: [], linkedConsumed: false })
  })
})

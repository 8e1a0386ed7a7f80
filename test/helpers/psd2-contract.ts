/**
 * One contract for every Psd2Store (src/signals/psd2.ts): the in-memory store
 * (test/unit/psd2-store.test.ts), a real standalone redis-server and a real Redis Cluster
 * (test/integration/psd2-store-redis.test.ts) must behave the same.
 */
import { randomUUID } from 'node:crypto'
import type t from 'tap'
import type { HistoryStore, SubjectKey } from '../../src/signals/history.js'
import { PSD2_CAPS } from '../../src/signals/psd2.js'

type T = Parameters<Parameters<typeof t.test>[0]>[0]

export const NOW = 1_700_000_000
const WINDOW = 900

export interface Psd2Backend {
  /** A new store instance; for Redis, a new client on the same server(s). */
  make: () => Promise<HistoryStore>
  /** Do two instances share their state? */
  shared: boolean
}

let seq = 0
export const subject = (tenant?: string): SubjectKey => ({ tenant, subject: `payer-${++seq}-${randomUUID()}` })

const empty = { exempted: { count: 0, cents: 0 }, failures: [] }

export function psd2Contract (t: T, backend: Psd2Backend): void {
  const open = async (t: T): Promise<HistoryStore> => {
    const store = await backend.make()
    t.teardown(() => store.close())
    return store
  }

  t.test('an empty read knows nothing', async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    t.strictSame(await psd2.read(key, { linked: { authTime: NOW - 5, txHash: 'tx-1' }, payeeId: 'payee-1', lockoutWindow: WINDOW }, NOW), {
      ...empty, linkedConsumed: false, trustedPayee: false
    })
    t.strictSame(await psd2.read(key, {}, NOW), empty, 'nothing asked: only the counters (zero)')
  })

  t.test('exempt without a limit always counts, and the counters add up', async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    t.equal(await psd2.exempt(key, { cents: 1250 }, NOW), true)
    t.equal(await psd2.exempt(key, { cents: 0 }, NOW + 1), true, 'a zero amount counts as a payment')
    t.equal(await psd2.exempt(key, { cents: 3000 }, NOW + 2), true)
    t.strictSame((await psd2.read(key, {}, NOW + 3)).exempted, { count: 3, cents: 4250 })
    for (let i = 0; i < 10; i++) t.equal(await psd2.exempt(key, { cents: 1 }, NOW + 4), true)
    t.strictSame((await psd2.read(key, {}, NOW + 5)).exempted, { count: 13, cents: 4260 }, 'no limit, no refusal')
  })

  t.test('limit on the count: the 5th payment is counted, the 6th refused', async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    const limit = { count: 5, cents: 10_000 }
    for (let i = 1; i <= 5; i++) t.equal(await psd2.exempt(key, { cents: 100, limit }, NOW + i), true, `payment ${i} counted`)
    t.equal(await psd2.exempt(key, { cents: 100, limit }, NOW + 6), false, 'the 6th is refused')
    t.equal(await psd2.exempt(key, { cents: 0, limit }, NOW + 7), false, 'even for nothing')
    t.strictSame((await psd2.read(key, {}, NOW + 8)).exempted, { count: 5, cents: 500 }, 'a refusal counts nothing')
    t.equal(await psd2.exempt(key, { cents: 100 }, NOW + 9), true, 'without a limit it still counts')
    t.strictSame((await psd2.read(key, {}, NOW + 9)).exempted, { count: 6, cents: 600 })
  })

  t.test('limit on the total: 100.00 EUR in all is allowed, 100.01 refused', async t => {
    const { psd2 } = await open(t)
    const limit = { count: 100, cents: 10_000 }
    const exact = subject('acme')
    for (let i = 0; i < 3; i++) t.equal(await psd2.exempt(exact, { cents: 2500, limit }, NOW), true)
    t.equal(await psd2.exempt(exact, { cents: 2500, limit }, NOW), true, '75.00 + 25.00 = 100.00 is allowed')
    t.equal(await psd2.exempt(exact, { cents: 1, limit }, NOW), false, '100.00 + 0.01 is refused')
    t.equal(await psd2.exempt(exact, { cents: 0, limit }, NOW), true, '100.00 + 0.00 is allowed')
    t.strictSame((await psd2.read(exact, {}, NOW)).exempted, { count: 5, cents: 10_000 })

    const over = subject('acme')
    t.equal(await psd2.exempt(over, { cents: 9999, limit }, NOW), true)
    t.equal(await psd2.exempt(over, { cents: 2, limit }, NOW), false, '99.99 + 0.02 = 100.01 is refused')
    t.equal(await psd2.exempt(over, { cents: 1, limit }, NOW), true, '99.99 + 0.01 = 100.00 is allowed')
    t.strictSame((await psd2.read(over, {}, NOW)).exempted, { count: 2, cents: 10_000 })

    const single = subject('acme')
    t.equal(await psd2.exempt(single, { cents: 10_001, limit }, NOW), false, 'one payment of 100.01 is refused')
    t.strictSame((await psd2.read(single, {}, NOW)).exempted, { count: 0, cents: 0 })
    t.equal(await psd2.exempt(single, { cents: 10_000, limit }, NOW), true, 'one payment of 100.00 is allowed')
    t.equal(await psd2.exempt(subject(), { cents: 0, limit: { count: 0, cents: 10_000 } }, NOW), false, 'a zero count limit allows nothing')
  })

  t.test('completeSca spends a linked SCA once', async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    const sca = { authTime: NOW - 30, txHash: 'tx-a', ttl: 600 }
    t.equal(await psd2.completeSca(key, sca, NOW), true, 'first use')
    t.equal(await psd2.completeSca(key, sca, NOW + 1), false, 'second use')
    t.equal((await psd2.read(key, { linked: { authTime: NOW - 30, txHash: 'tx-a' } }, NOW + 2)).linkedConsumed, true)
    t.equal((await psd2.read(key, { linked: { authTime: NOW - 30, txHash: 'tx-b' } }, NOW + 2)).linkedConsumed, false, 'another transaction')
    t.equal((await psd2.read(key, { linked: { authTime: NOW - 29, txHash: 'tx-a' } }, NOW + 2)).linkedConsumed, false, 'another authentication')
    t.equal(await psd2.completeSca(key, { ...sca, txHash: 'tx-b' }, NOW + 2), true, 'the same authentication for another transaction')
    t.equal(await psd2.completeSca(key, { ...sca, authTime: NOW - 29 }, NOW + 2), true, 'another authentication for the same transaction')
    t.equal((await psd2.read(key, {}, NOW + 3)).trustedPayee, undefined, 'trustedPayee only when asked')
  })

  t.test('completeSca resets the counters and the failures, trusts the payee; a spent one changes nothing', async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    await psd2.exempt(key, { cents: 1500 }, NOW)
    await psd2.exempt(key, { cents: 500 }, NOW + 1)
    await psd2.recordFailure(key, NOW + 2, WINDOW)
    await psd2.recordFailure(key, NOW + 3, WINDOW)
    const query = { payeeId: 'payee-1', lockoutWindow: WINDOW }
    t.strictSame(await psd2.read(key, query, NOW + 4), { exempted: { count: 2, cents: 2000 }, failures: [NOW + 2, NOW + 3], trustedPayee: false })

    t.equal(await psd2.completeSca(key, { authTime: NOW + 4, txHash: 'tx-1', ttl: 600, trustPayeeId: 'payee-1' }, NOW + 5), true)
    t.strictSame(await psd2.read(key, query, NOW + 6), { exempted: { count: 0, cents: 0 }, failures: [], trustedPayee: true }, 'reset, cleared, trusted')

    const limit = { count: 5, cents: 10_000 }
    for (let i = 0; i < 5; i++) t.equal(await psd2.exempt(key, { cents: 100, limit }, NOW + 7), true, 'counting starts again')
    t.equal(await psd2.exempt(key, { cents: 100, limit }, NOW + 7), false)
    await psd2.recordFailure(key, NOW + 8, WINDOW)
    t.equal(await psd2.completeSca(key, { authTime: NOW + 4, txHash: 'tx-1', ttl: 600, trustPayeeId: 'payee-2' }, NOW + 9), false, 'already spent')
    t.strictSame(await psd2.read(key, { ...query, payeeId: 'payee-2' }, NOW + 9), { exempted: { count: 5, cents: 500 }, failures: [NOW + 8], trustedPayee: false },
      'a spent SCA neither resets, clears nor trusts')

    t.equal(await psd2.completeSca(key, { authTime: NOW + 9, txHash: 'tx-2', ttl: 600 }, NOW + 10), true, 'without a payee to trust')
    t.strictSame(await psd2.read(key, query, NOW + 10), { exempted: { count: 0, cents: 0 }, failures: [], trustedPayee: true }, 'the trusted payee stays')
    t.equal((await psd2.read(key, { payeeId: 'payee-2' }, NOW + 10)).trustedPayee, false, 'and no other was added')
  })

  t.test(`trusted payees: at most ${PSD2_CAPS.trustedPayees}, the oldest dropped; trusting again refreshes`, async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    const n = PSD2_CAPS.trustedPayees + 5
    for (let i = 0; i < n; i++) {
      const at = NOW + i
      t.equal(await psd2.completeSca(key, { authTime: at, txHash: `tx-${i}`, ttl: 600, trustPayeeId: `payee-${i}` }, at), true)
      if (i === PSD2_CAPS.trustedPayees - 1) {
        // payee-0 trusted again: now the newest.
        t.equal(await psd2.completeSca(key, { authTime: at, txHash: 'tx-again', ttl: 600, trustPayeeId: 'payee-0' }, at), true)
      }
    }
    const trusted = async (id: string): Promise<boolean | undefined> => (await psd2.read(key, { payeeId: id }, NOW + n)).trustedPayee
    t.equal(await trusted('payee-0'), true, 'refreshed: kept')
    for (let i = 1; i <= 5; i++) t.equal(await trusted(`payee-${i}`), false, `payee-${i} (among the oldest) dropped`)
    t.equal(await trusted('payee-6'), true, 'the oldest kept')
    t.equal(await trusted(`payee-${n - 1}`), true, 'the newest kept')
    let kept = 0
    for (let i = 0; i < n; i++) if (await trusted(`payee-${i}`) === true) kept++
    t.equal(kept, PSD2_CAPS.trustedPayees, `exactly ${PSD2_CAPS.trustedPayees}`)
  })

  t.test('failures: ascending, within the asked window, at most the last 20, old ones dropped on write', async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    await psd2.recordFailure(key, NOW, WINDOW)
    await psd2.recordFailure(key, NOW + 10.7, WINDOW)
    await psd2.recordFailure(key, NOW + 30, WINDOW)
    await psd2.recordFailure(key, NOW + 20, WINDOW) // out of order (another instance's clock)
    t.strictSame((await psd2.read(key, { lockoutWindow: WINDOW }, NOW + 40)).failures, [NOW, NOW + 10, NOW + 20, NOW + 30], 'to the second, ascending')
    t.strictSame((await psd2.read(key, { lockoutWindow: 25 }, NOW + 40)).failures, [NOW + 20, NOW + 30], 'only those within the asked window')
    t.strictSame((await psd2.read(key, { lockoutWindow: 20 }, NOW + 40)).failures, [NOW + 30], 'exactly the window old is outside it')
    t.strictSame((await psd2.read(key, {}, NOW + 40)).failures, [], 'none when not asked')

    await psd2.recordFailure(key, NOW + WINDOW + 15, WINDOW)
    t.strictSame((await psd2.read(key, { lockoutWindow: 10 * WINDOW }, NOW + WINDOW + 15)).failures, [NOW + 20, NOW + 30, NOW + WINDOW + 15],
      'those older than the window were dropped by the write')

    const many = subject('acme')
    for (let i = 0; i < PSD2_CAPS.failures + 5; i++) await psd2.recordFailure(many, NOW + i, WINDOW)
    const kept = (await psd2.read(many, { lockoutWindow: WINDOW }, NOW + 30)).failures
    t.equal(kept.length, PSD2_CAPS.failures, `at most ${PSD2_CAPS.failures}`)
    t.strictSame(kept, Array.from({ length: PSD2_CAPS.failures }, (_v, i) => NOW + 5 + i), 'the newest')
  })

  t.test('clearFailures: the subject\'s failures end, nothing else, no one else\'s', async t => {
    const { psd2 } = await open(t)
    const key = subject('acme')
    const other = subject('acme')
    await psd2.exempt(key, { cents: 500 }, NOW)
    for (const k of [key, other]) { await psd2.recordFailure(k, NOW, WINDOW); await psd2.recordFailure(k, NOW + 1, WINDOW) }
    await psd2.clearFailures(key, NOW + 2)
    t.strictSame(await psd2.read(key, { lockoutWindow: WINDOW }, NOW + 3), { exempted: { count: 1, cents: 500 }, failures: [] })
    t.strictSame((await psd2.read(other, { lockoutWindow: WINDOW }, NOW + 3)).failures, [NOW, NOW + 1])
    await psd2.recordFailure(key, NOW + 4, WINDOW)
    t.strictSame((await psd2.read(key, { lockoutWindow: WINDOW }, NOW + 5)).failures, [NOW + 4], 'counting starts again')
    await psd2.clearFailures(subject('acme'), NOW)
    t.pass('clearing a subject never seen is a no-op')
  })

  t.test('tenants are isolated, the default tenant from every named one', async t => {
    const { psd2 } = await open(t)
    const id = `alice-${randomUUID()}`
    const a: SubjectKey = { tenant: 'tenant-a', subject: id }
    await psd2.exempt(a, { cents: 700 }, NOW)
    await psd2.recordFailure(a, NOW, WINDOW)
    t.equal(await psd2.completeSca(a, { authTime: NOW, txHash: 'tx', ttl: 600, trustPayeeId: 'payee' }, NOW), true)
    await psd2.exempt(a, { cents: 300 }, NOW)
    await psd2.recordFailure(a, NOW + 1, WINDOW)
    const query = { linked: { authTime: NOW, txHash: 'tx' }, payeeId: 'payee', lockoutWindow: WINDOW }
    t.strictSame(await psd2.read(a, query, NOW + 2), { exempted: { count: 1, cents: 300 }, failures: [NOW + 1], linkedConsumed: true, trustedPayee: true })
    for (const [name, key] of [['tenant b', { tenant: 'tenant-b', subject: id }], ['default tenant', { tenant: undefined, subject: id }], ['empty tenant name', { tenant: '', subject: id }]] as const) {
      t.strictSame(await psd2.read(key, query, NOW + 2), { ...empty, linkedConsumed: false, trustedPayee: false }, name)
    }
    t.equal(await psd2.completeSca({ tenant: undefined, subject: id }, { authTime: NOW, txHash: 'tx', ttl: 600 }, NOW), true, 'spent per subject')
    t.equal(await psd2.completeSca({ tenant: 'x', subject: 'y:z' }, { authTime: NOW, txHash: 'tx', ttl: 600 }, NOW), true)
    t.equal((await psd2.read({ tenant: 'x:y', subject: 'z' }, query, NOW)).linkedConsumed, false, 'no collision by concatenation')
  })

  t.test('ids with separators and odd characters stay apart', async t => {
    const { psd2 } = await open(t)
    const key: SubjectKey = { tenant: 'te}n{ant', subject: 'sub}ject{' }
    const hashes = ['a:b', 'a', 'b', '}', '{x}', 'ü🌍', ' ']
    for (const [i, txHash] of hashes.entries()) t.equal(await psd2.completeSca(key, { authTime: NOW, txHash, ttl: 600, trustPayeeId: txHash }, NOW + i), true, JSON.stringify(txHash))
    t.equal(await psd2.completeSca(key, { authTime: NOW, txHash: 'a:b', ttl: 600 }, NOW + 10), false)
    t.equal((await psd2.read(key, { linked: { authTime: NOW, txHash: 'a:c' }, payeeId: 'a:c' }, NOW + 10)).linkedConsumed, false)
    t.equal(await psd2.completeSca(key, { authTime: NOW - 1, txHash: 'a:b', ttl: 600 }, NOW + 10), true, 'another authentication time')
    for (const id of hashes) t.equal((await psd2.read(key, { payeeId: id }, NOW + 10)).trustedPayee, true, `payee ${JSON.stringify(id)}`)
    t.equal((await psd2.read(key, { payeeId: 'c' }, NOW + 10)).trustedPayee, false)
  })

  t.test('arguments no caller should send are refused, not guessed at', async t => {
    const { psd2 } = await open(t)
    const key = subject()
    await t.rejects(psd2.exempt(key, { cents: 12.5 }, NOW), /cents/, 'fractional cents')
    await t.rejects(psd2.exempt(key, { cents: -1 }, NOW), /cents/, 'negative cents')
    await t.rejects(psd2.exempt(key, { cents: 1, limit: { count: 1.5, cents: 100 } }, NOW), /limit/)
    await t.rejects(psd2.completeSca(key, { authTime: NOW, txHash: '', ttl: 600 }, NOW), /txHash/)
    await t.rejects(psd2.completeSca(key, { authTime: NOW, txHash: 'tx', ttl: 0 }, NOW), /ttl/)
    await t.rejects(psd2.recordFailure(key, NOW, 0), /window/)
    t.strictSame(await psd2.read(key, { lockoutWindow: WINDOW }, NOW), empty, 'nothing was written')
  })

  t.test('concurrency: 50 parallel completeSca of one SCA, exactly one wins', async t => {
    const one = await open(t)
    const two = backend.shared ? await open(t) : one
    const key = subject('acme')
    await one.psd2.exempt(key, { cents: 100 }, NOW)
    const results = await Promise.all(Array.from({ length: 50 }, (_v, i) =>
      (i % 2 === 0 ? one : two).psd2.completeSca(key, { authTime: NOW - 10, txHash: 'tx-race', ttl: 600, trustPayeeId: `payee-${i}` }, NOW)))
    t.equal(results.filter(r => r).length, 1, 'exactly one true')
    const winner = results.indexOf(true)
    const read = await one.psd2.read(key, { payeeId: `payee-${winner}`, linked: { authTime: NOW - 10, txHash: 'tx-race' } }, NOW)
    t.strictSame(read, { exempted: { count: 0, cents: 0 }, failures: [], trustedPayee: true, linkedConsumed: true }, 'the winner reset and trusted')
    let trusted = 0
    for (let i = 0; i < 50; i++) if ((await one.psd2.read(key, { payeeId: `payee-${i}` }, NOW)).trustedPayee === true) trusted++
    t.equal(trusted, 1, 'only the winner trusted its payee')
  })

  t.test('concurrency: 50 parallel exemptions of 10.00 EUR within {count 5, 100.00 EUR}, exactly 5 counted', async t => {
    const one = await open(t)
    const two = backend.shared ? await open(t) : one
    const key = subject('acme')
    const limit = { count: 5, cents: 10_000 }
    const results = await Promise.all(Array.from({ length: 50 }, (_v, i) => (i % 2 === 0 ? one : two).psd2.exempt(key, { cents: 1000, limit }, NOW)))
    t.equal(results.filter(r => r).length, 5, 'exactly 5 true')
    t.strictSame((await one.psd2.read(key, {}, NOW)).exempted, { count: 5, cents: 5000 })

    const total = subject('acme')
    const byTotal = await Promise.all(Array.from({ length: 50 }, (_v, i) =>
      (i % 2 === 0 ? one : two).psd2.exempt(total, { cents: 3000, limit: { count: 100, cents: 10_000 } }, NOW)))
    t.equal(byTotal.filter(r => r).length, 3, 'the total limit holds under races too (3 x 30.00)')
    t.strictSame((await two.psd2.read(total, {}, NOW)).exempted, { count: 3, cents: 9000 })
  })

  if (backend.shared) {
    t.test('two instances see each other\'s writes', async t => {
      const one = await open(t)
      const two = await open(t)
      const key = subject('acme')
      t.equal(await one.psd2.exempt(key, { cents: 2000 }, NOW), true)
      await two.psd2.recordFailure(key, NOW + 1, WINDOW)
      t.strictSame(await two.psd2.read(key, { lockoutWindow: WINDOW }, NOW + 2), { exempted: { count: 1, cents: 2000 }, failures: [NOW + 1] })
      t.strictSame(await one.psd2.read(key, { lockoutWindow: WINDOW }, NOW + 2), { exempted: { count: 1, cents: 2000 }, failures: [NOW + 1] })
      const sca = { authTime: NOW, txHash: 'tx-shared', ttl: 600, trustPayeeId: 'payee-shared' }
      t.equal(await two.psd2.completeSca(key, sca, NOW + 3), true)
      t.equal(await one.psd2.completeSca(key, sca, NOW + 3), false, 'spent on the other instance')
      t.strictSame(await one.psd2.read(key, { linked: { authTime: NOW, txHash: 'tx-shared' }, payeeId: 'payee-shared', lockoutWindow: WINDOW }, NOW + 4),
        { exempted: { count: 0, cents: 0 }, failures: [], linkedConsumed: true, trustedPayee: true })
    })
  }
}

// Decision records keep what a replay needs; GET /audit/export streams them; completion is observed.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { createMemoryAuditLog, BoundedMap, type DecisionAuditRecord } from '../../src/audit/audit-log.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'

const ADMIN = 'admin-key-0123456789'
const geo = await openGeoLookup({})
const NOW = Date.parse('2026-11-22T12:00:00Z')

const POLICIES = `assurance:
  audit:
    redactContext: [iban]
policies:
  - id: large-payouts
    actions: [payments.payout]
    when:
      - condition: context.amount > 1000
      - newDevice: { days: 30 }
    require: { aal: 2, maxAge: 5m }
`

async function setup (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-records-'))
  writeFileSync(join(dir, 'p.yaml'), POLICIES)
  let now = NOW
  const audit = createMemoryAuditLog({ maxEntries: 1000 })
  const app = await buildApp({ apiKeys: [], adminApiKeys: [ADMIN] }, {
    policies: new PolicyHolder((await loadPolicySet(dir)).set), geo, history: createMemoryHistoryStore({ maxSubjects: 100 }), audit, now: () => now
  })
  t.teardown(() => app.close())
  const decide = (amr: string[], authAgo = 60, extra: Record<string, unknown> = {}) => app.inject({
    method: 'POST', url: '/decide',
    payload: {
      action: 'payments.payout', subject: { id: 'alice' }, ip: '81.2.69.142', device: { fingerprint: 'fp-secret-value' },
      claims: { amr, auth_time: Math.floor(now / 1000) - authAgo, acr: 'x', email: 'alice@example.com', name: 'Alice' },
      context: { amount: 5000, iban: 'DE89370400440532013000', note: 'rent' }, ...extra
    }
  })
  const records = async () => (await audit.query({ limit: 1000 })).reverse()
  return { app, audit, decide, records, advance: (ms: number) => { now += ms } }
}

t.test('a decision record keeps the normalized request (claims limited, device hashed, context redacted), the facts and the revision', async t => {
  const { decide, records, app } = await setup(t)
  const res = await decide(['pwd'])
  t.equal(res.json().decision, 'step_up')
  const [record] = await records() as unknown as DecisionAuditRecord[]
  t.match(record, {
    event: 'auth.step_up_initiated', decision: 'step_up', revision: /^sha256:[0-9a-f]{16}$/, now: NOW / 1000,
    request: { action: 'payments.payout', subjectId: 'alice', ip: '81.2.69.142', claims: { amr: ['pwd'], acr: 'x' }, context: { amount: 5000, note: 'rent' } },
    facts: { geo: { status: 'found' }, history: { status: 'found' }, ipLists: null, onceOnly: { status: 'skipped' } }
  })
  t.notOk('email' in record!.request!.claims, 'claims outside the list are not kept')
  t.notOk('iban' in record!.request!.context, 'a redacted context key is dropped')
  t.not(record!.request!.deviceId, 'fp-secret-value')
  t.notMatch(JSON.stringify(record), /fp-secret-value|DE89370400440532013000|alice@example\.com/)
  const exported = await app.inject({ url: '/audit/export', headers: { authorization: `Bearer ${ADMIN}` } })
  t.equal(exported.statusCode, 200)
  t.match(exported.headers['content-type'], /application\/x-ndjson/)
  const lines = exported.body.trim().split('\n').map(l => JSON.parse(l))
  t.equal(lines.length, 1)
  t.same(lines[0], { ...JSON.parse(JSON.stringify(record)), at: NOW })
  t.equal((await app.inject({ url: '/audit/export' })).statusCode, 401, 'admin only')
  t.equal((await app.inject({ url: '/audit/export?since=yesterday', headers: { authorization: `Bearer ${ADMIN}` } })).statusCode, 400)
})

t.test('the next allowed decision for the same subject and action within an hour records auth.step_up_completed linked to the step-up', async t => {
  const { decide, audit, advance } = await setup(t)
  const first = (await decide(['pwd'])).json()
  t.equal(first.decision, 'step_up')
  advance(30_000)
  t.equal((await decide(['pwd', 'otp'], 10)).json().decision, 'allow')
  await new Promise(resolve => setImmediate(resolve))
  const completed = await audit.query({ event: 'auth.step_up_completed', limit: 10 })
  t.equal(completed.length, 1)
  t.match(completed[0], { decisionId: first.decisionId, initiatedBy: first.decisionId, subject: 'alice', action: 'payments.payout' })
  advance(1000)
  t.equal((await decide(['pwd', 'otp'], 10)).json().decision, 'allow')
  await new Promise(resolve => setImmediate(resolve))
  t.equal((await audit.query({ event: 'auth.step_up_completed', limit: 10 })).length, 1, 'once')
})

t.test('no completion after an hour, for another action, or when the outcome was already reported', async t => {
  const { decide, audit, advance, app } = await setup(t)
  t.equal((await decide(['pwd'])).json().decision, 'step_up')
  advance(60 * 60 * 1000 + 1000)
  t.equal((await decide(['pwd', 'otp'], 10)).json().decision, 'allow')
  const reported = (await decide(['pwd'])).json()
  t.equal((await app.inject({ method: 'POST', url: '/events', payload: { decisionId: reported.decisionId, event: 'auth.step_up_failed' } })).statusCode, 200)
  t.equal((await decide(['pwd', 'otp'], 10)).json().decision, 'allow')
  await new Promise(resolve => setImmediate(resolve))
  t.equal((await audit.query({ event: 'auth.step_up_completed', limit: 10 })).length, 0)
})

t.test('BoundedMap: an evicting insert at 100,000 entries costs about what a plain Map insert + delete does (evicting is O(1))', async t => {
  // Compared with a plain Map doing the same number of inserts and deletes at the same size, so
  // the memory effects of 100,000 entries (and a busy machine) weigh on both sides alike. The
  // Map.keys().next() eviction it replaces was ~28 times a plain Map.set at this size.
  const SIZE = 100_000
  const bounded = (): number => {
    const map = new BoundedMap<string, number>(SIZE)
    for (let i = 0; i < SIZE; i++) map.set(`k${i}`, i)
    const started = performance.now()
    for (let i = 0; i < 20_000; i++) map.set(`n${i}`, i) // every insert evicts
    return performance.now() - started
  }
  const plain = (): number => {
    const map = new Map<string, number>()
    for (let i = 0; i < SIZE; i++) map.set(`k${i}`, i)
    const started = performance.now()
    for (let i = 0; i < 20_000; i++) { map.set(`n${i}`, i); map.delete(`k${i}`) }
    return performance.now() - started
  }
  bounded(); plain()
  let large = Infinity
  let base = Infinity
  for (let round = 0; round < 3; round++) { large = Math.min(large, bounded()); base = Math.min(base, plain()) }
  t.ok(large < base * 5 + 10, `20,000 evicting inserts at ${SIZE} entries: ${large.toFixed(1)} ms; a plain Map insert + delete: ${base.toFixed(1)} ms`)
  const map = new BoundedMap<string, number>(3)
  for (const k of ['a', 'b', 'c', 'd']) map.set(k, 1)
  t.equal(map.has('a'), false, 'the oldest goes first')
  t.equal(map.size, 3)
})

t.test('GET /audit/export answers 503 with Retry-After when the audit store is down', async t => {
  const audit = createMemoryAuditLog({ maxEntries: 10 })
  audit.export = () => ({ [Symbol.asyncIterator]: () => ({ next: async () => { throw new Error('connection refused') } }) })
  const dir = mkdtempSync(join(tmpdir(), 'stepup-records-'))
  writeFileSync(join(dir, 'p.yaml'), POLICIES)
  const app = await buildApp({ apiKeys: [], adminApiKeys: [ADMIN] }, {
    policies: new PolicyHolder((await loadPolicySet(dir)).set), geo, history: createMemoryHistoryStore({ maxSubjects: 10 }), audit
  })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/audit/export', headers: { authorization: `Bearer ${ADMIN}` } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.match(res.json(), { error: 'service_unavailable' })
  t.notMatch(res.body, /connection refused/, 'no internals')
})

// stepup replay: a few hundred mixed decisions recorded with a Redis history and a Redis
// audit stream, replayed against a loosened and a tightened folder: the counts match a direct
// re-run of the same requests, decisions lacking a fact are counted, and --fail-on weaker
// fails only for the loosened folder.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { createRedisAuditLog } from '../../src/audit/redis-audit-log.js'
import { replayOne, type ReplayReport } from '../../src/audit/replay.js'
import type { DecisionAuditRecord } from '../../src/audit/audit-log.js'
import { replayCommand } from '../../src/cli/replay.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createRedisClient, createRedisHistoryStore } from '../../src/signals/redis-history.js'
import { requireRedis, startRedis } from '../helpers/redis.js'

const ADMIN = 'admin-key-0123456789'

const policies = (payouts: string, admin: string, extra = ''): string => `assurance:
  learnFrom: { aal: 2, maxAge: 1m }
policies:
  - id: payouts
    actions: [payments.payout]
    when:
      - condition: ${payouts}
      - newDevice: { days: 30 }
    require: { aal: 2, maxAge: 10m }
  - id: admin
    actions: ["admin.**"]
    require: ${admin}
  - id: blocked
    actions: ["**"]
    when:
      - ipList: { lists: [blocked] }
    effect: deny
${extra}`

const folder = (text: string): string => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-replay-'))
  writeFileSync(join(dir, 'p.yaml'), text)
  mkdirSync(join(dir, 'lists'))
  writeFileSync(join(dir, 'lists', 'blocked.txt'), '203.0.113.0/24\n')
  return dir
}

const RECORDED = folder(policies('context.amount > 1000', '{ aal: 2, factors: [security_key, passkey], maxAge: 5m }'))
// Looser: payouts fire from 5,000 only; admin accepts an OTP.
const LOOSER = folder(policies('context.amount > 5000', '{ aal: 2, factors: [security_key, passkey, totp], maxAge: 5m }'))
// Tighter: payouts from 500 and at AAL 3; a new policy on profile.update needs history the
// recorded set never read for that action (those decisions cannot be judged).
const TIGHTER = folder(policies('context.amount > 500', '{ aal: 2, factors: [security_key, passkey], maxAge: 5m }',
  '  - id: profile-new-country\n    actions: [profile.update]\n    when:\n      - newCountry: { days: 30 }\n    require: { aal: 2 }\n'))

/** A small seeded PRNG: the same mix every run. */
const rng = (seed: number) => () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }

if (requireRedis(t)) {
  const redis = await startRedis(t)
  const geo = await openGeoLookup({})
  const T0 = Date.parse('2026-11-22T09:00:00Z')
  let now = T0
  const client = createRedisClient({ url: redis.url, commandTimeoutMs: 2000 })
  client.on('error', () => {})
  const history = createRedisHistoryStore({ url: redis.url, commandTimeoutMs: 2000 })
  const audit = createRedisAuditLog(client, { maxEntries: 100_000 })
  const app = await buildApp({ apiKeys: [], adminApiKeys: [ADMIN] }, {
    policies: new PolicyHolder((await loadPolicySet(RECORDED)).set), geo, history, audit, now: () => now, logger: pino({ level: 'silent' })
  })
  t.teardown(async () => { await app.close(); await history.close(); client.disconnect() })

  const IPS = ['81.2.69.142', '2.125.160.216', '89.160.20.112', '203.0.113.9', undefined]
  const ACTIONS = ['payments.payout', 'admin.users.delete', 'profile.update', 'docs.read']
  const AMRS = [['pwd'], ['pwd', 'otp'], ['hwk', 'pin'], ['pwd', 'otp', 'hwk']]
  const body = (r: () => number, seed = false): Record<string, unknown> => {
    const subject = `user-${Math.floor(r() * 20)}`
    const ip = seed ? IPS[0] : IPS[Math.floor(r() * IPS.length)]
    const b: Record<string, unknown> = {
      action: seed ? 'payments.payout' : ACTIONS[Math.floor(r() * ACTIONS.length)],
      subject: { id: subject },
      device: { fingerprint: `${subject}-${seed || r() < 0.7 ? 'laptop' : `new-${Math.floor(r() * 1000)}`}` },
      // Seeding sessions are fresh (they teach the history); recorded ones are 5 minutes old (they do not).
      claims: { sub: subject, amr: seed ? ['pwd', 'otp'] : AMRS[Math.floor(r() * AMRS.length)], auth_time: Math.floor(now / 1000) - (seed ? 5 : 300) },
      context: { amount: seed ? 10 : Math.floor(r() * 8000) }
    }
    if (ip !== undefined) b.ip = ip
    return b
  }
  const post = async (payload: Record<string, unknown>) => (await app.inject({ method: 'POST', url: '/decide', payload })).json()

  // The history: every subject's laptop and home country, learnt from strong sessions.
  const seed = rng(1)
  for (let i = 0; i < 40; i++) { now += 1000; await post(body(seed, true)) }
  // The recorded traffic.
  const r = rng(42)
  const sent: Array<{ at: number, payload: Record<string, unknown>, decision: string }> = []
  for (let i = 0; i < 300; i++) {
    now += 1000
    const payload = body(r)
    sent.push({ at: now, payload, decision: (await post(payload)).decision })
  }
  await audit.flush()
  const exported = await app.inject({ url: '/audit/export', headers: { authorization: `Bearer ${ADMIN}` } })
  // The traffic after the seeding: what the replays read.
  const SINCE = new Date(T0 + 40_001).toISOString()
  const exportFile = join(mkdtempSync(join(tmpdir(), 'stepup-export-')), 'audit.jsonl')
  const lines = exported.body.trim().split('\n').filter(l => (JSON.parse(l) as DecisionAuditRecord).at > T0 + 40_000)
  writeFileSync(exportFile, lines.join('\n') + '\n')
  const recorded = lines.map(l => JSON.parse(l) as DecisionAuditRecord).filter(x => x.event.startsWith('auth.') && x.request !== undefined)

  const replay = async (dir: string, from: string, extra: Partial<Parameters<typeof replayCommand>[0]> = {}) => {
    const out: string[] = []
    const code = await replayCommand({ policies: dir, from, since: undefined, failOn: undefined, json: true, ...extra }, { out: l => out.push(l), err: l => out.push(l) })
    return { code, report: JSON.parse(out.join('\n')) as ReplayReport }
  }

  /** The same requests decided by an app serving `dir`, on the same Redis history, at the same times. */
  const direct = async (dir: string): Promise<Record<string, number>> => {
    const set = (await loadPolicySet(dir)).set
    let clock = 0
    const other = await buildApp({ apiKeys: [], adminApiKeys: [] }, { policies: new PolicyHolder(set), geo, history, now: () => clock })
    const counts: Record<string, number> = {}
    for (let i = 0; i < sent.length; i++) {
      const record = recorded[i]!
      if ('missing' in replayOne(set, record)) continue // the replay cannot judge it: not counted there either
      clock = sent[i]!.at
      const answer = (await other.inject({ method: 'POST', url: '/decide', payload: sent[i]!.payload })).json() as { decision: string, required?: { aal: number, maxAge: number, factors: string[] } }
      let pair = `${sent[i]!.decision} -> ${answer.decision}`
      const was = record.required
      const now = answer.required
      if (pair === 'step_up -> step_up' && was && now) {
        // The step-up asks less or more: a lower or higher AAL, a longer or shorter maxAge, more or fewer factors.
        const wider = now.factors.some(f => !was.factors.includes(f))
        const narrower = was.factors.some(f => !now.factors.includes(f))
        const weaker = now.aal !== was.aal ? now.aal < was.aal : now.maxAge !== was.maxAge ? now.maxAge > was.maxAge : wider && !narrower
        const stronger = now.aal !== was.aal ? now.aal > was.aal : now.maxAge !== was.maxAge ? now.maxAge < was.maxAge : narrower && !wider
        if (weaker) pair = 'step_up -> step_up (weaker requirement)'
        else if (stronger) pair = 'step_up -> step_up (stronger requirement)'
      }
      counts[pair] = (counts[pair] ?? 0) + 1
    }
    await other.close()
    return counts
  }

  t.test('the records hold every decision, with a mix of outcomes and facts', async t => {
    t.equal(recorded.length, 300)
    t.same(recorded.map(x => x.decision), sent.map(s => s.decision), 'one record per decision, in order')
    const kinds = new Set(sent.map(s => s.decision))
    t.same([...kinds].sort(), ['allow', 'deny', 'step_up'])
    t.ok(recorded.some(x => x.facts?.history.status === 'found'), 'history facts recorded')
    t.ok(recorded.some(x => x.facts?.geo.status === 'found'), 'geo facts recorded')
  })

  t.test('the recorded set replays to exactly what it decided', async t => {
    const { code, report } = await replay(RECORDED, exportFile)
    t.equal(code, 0)
    t.equal(report.replayed, 300)
    t.equal(report.changed, 0)
    t.equal(report.unjudgeable.count, 0)
  })

  for (const [name, dir] of [['loosened', LOOSER], ['tightened', TIGHTER]] as const) {
    t.test(`a ${name} folder: the counts match a direct re-run of the same requests`, async t => {
      const { report } = await replay(dir, exportFile)
      const expected = await direct(dir)
      t.same(report.transitions, expected)
      t.ok(report.changed > 0, `${report.changed} decisions change`)
      if (name === 'loosened') {
        t.ok(report.weaker > 0 && report.stronger === 0, `${report.weaker} weaker`)
        t.ok((report.transitions['step_up -> step_up (weaker requirement)'] ?? 0) > 0, 'a step-up that now accepts an OTP asks less')
        t.ok(report.samples.length > 0 && report.samples.every(s => s.reasons.length > 0), 'samples with reasons')
      } else {
        t.ok(report.stronger > 0 && report.weaker === 0, `${report.stronger} stronger`)
        t.ok(report.unjudgeable.count > 0, `${report.unjudgeable.count} cannot be judged`)
        t.same(Object.keys(report.unjudgeable.byFact), ['history'])
        t.equal(report.replayed + report.unjudgeable.count, 300, 'each decision is either replayed or counted as unjudgeable')
      }
    })
  }

  t.test('--fail-on weaker exits 1 only for the loosened folder; the Redis stream reads like the export', async t => {
    t.equal((await replay(LOOSER, exportFile, { failOn: 'weaker' })).code, 1)
    t.equal((await replay(TIGHTER, exportFile, { failOn: 'weaker' })).code, 0)
    const fromFile = await replay(LOOSER, exportFile)
    const fromRedis = await replay(LOOSER, redis.url, { since: SINCE })
    t.same(fromRedis.report.transitions, fromFile.report.transitions)
    t.equal((await replay(LOOSER, redis.url, { failOn: 'weaker', since: SINCE })).code, 1)
  })

  t.test('--since keeps only the recent decisions', async t => {
    const { report } = await replay(RECORDED, exportFile, { since: new Date(T0 + 40_000 + 150_500).toISOString() })
    t.equal(report.replayed, 150)
  })
}

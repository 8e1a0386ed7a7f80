// The removal guard and the reload audit trail: a reload that removes policies or empties a
// file is refused (a truncated write looks exactly like that) unless the operator confirms it.
import { mkdtempSync, writeFileSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { createMemoryAuditLog } from '../../src/audit/audit-log.js'
import { createMetrics } from '../../src/metrics.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import { createPolicyReloader } from '../../src/policy/reloader.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'

const ADMIN = 'admin-key-0123456789'
const geo = await openGeoLookup({})

const PAYOUT = 'policies:\n  - id: large-payouts\n    actions: [payments.payout]\n    require: { aal: 3, maxAge: 5m }\n'
const OTHER = 'policies:\n  - id: profile\n    actions: [profile.update]\n    require: { aal: 2 }\n'

async function setup (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-guard-'))
  writeFileSync(join(dir, 'payouts.yaml'), PAYOUT)
  writeFileSync(join(dir, 'other.yaml'), OTHER)
  const holder = new PolicyHolder((await loadPolicySet(dir)).set)
  const logger = pino({ level: 'silent' })
  const audit = createMemoryAuditLog({ maxEntries: 1000 })
  const metrics = createMetrics()
  const reloader = createPolicyReloader({ dir, holder, logger, onEvent: e => audit.append(e), onResult: r => metrics.reload(r.outcome, r.policies) })
  const app = await buildApp({ apiKeys: [], adminApiKeys: [ADMIN] }, { policies: holder, geo, history: createMemoryHistoryStore({ maxSubjects: 10 }), logger, reloader, audit, metrics })
  t.teardown(async () => { reloader.close(); await app.close() })
  const admin = (method: 'GET' | 'POST', url: string) => app.inject({ method, url, headers: { authorization: `Bearer ${ADMIN}` } })
  const ids = (): string[] => holder.current.policies.map(p => p.id).sort()
  return { dir, holder, app, admin, reloader, audit, ids }
}

t.test('an emptied file is refused: the AAL 3 payout policy keeps serving, the error shows, an audit event says why', async t => {
  const { dir, admin, ids, audit, holder } = await setup(t)
  const before = holder.current.revision
  writeFileSync(join(dir, 'payouts.yaml'), '')
  const refused = await admin('POST', '/policies/reload')
  t.equal(refused.statusCode, 422)
  t.match(refused.json(), { error: 'policies_invalid', removed: ['large-payouts'], problems: [/^payouts\.yaml:1:1 \(policies\): held large-payouts and now holds none/] })
  t.same(ids(), ['large-payouts', 'profile'], 'the last good set serves')
  const ready = await admin('GET', '/readyz')
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'degraded', policies: { revision: before, lastError: [/payouts\.yaml.*large-payouts/] } })
  t.match((await admin('GET', '/policies')).json(), { lastError: [/payouts\.yaml.*large-payouts/] })
  const [event] = await audit.query({ event: 'policy.rejected', limit: 10 })
  t.match(event, { event: 'policy.rejected', revisionBefore: before, removed: ['large-payouts'], added: [], changed: [], trigger: 'POST /policies/reload' })
  t.type(event?.revisionAfter, 'string')
  t.match((await admin('GET', '/metrics')).body, /stepup_policy_reloads_total\{outcome="removal_refused"\} 1/)
})

t.test('a truncated file that still parses (one of two policies left) is refused too', async t => {
  const { dir, reloader, ids } = await setup(t)
  writeFileSync(join(dir, 'other.yaml'), OTHER + '  - id: second\n    actions: [x.y]\n')
  t.equal((await reloader.reload('grow')).outcome, 'applied')
  writeFileSync(join(dir, 'other.yaml'), OTHER)
  const result = await reloader.reload('truncated')
  t.match(result, { ok: false, outcome: 'removal_refused', removed: ['second'] })
  t.same(ids(), ['large-payouts', 'profile', 'second'])
})

t.test('a deleted file is refused unless confirmed with allowRemovals=true; the audit event lists the change', async t => {
  const { dir, admin, ids, audit, holder } = await setup(t)
  unlinkSync(join(dir, 'payouts.yaml'))
  writeFileSync(join(dir, 'other.yaml'), OTHER.replace('aal: 2', 'aal: 3') + '  - id: added\n    actions: [x.y]\n')
  t.equal((await admin('POST', '/policies/reload')).statusCode, 422)
  const before = holder.current.revision
  const applied = await admin('POST', '/policies/reload?allowRemovals=true')
  t.equal(applied.statusCode, 200)
  t.match(applied.json(), { ok: true, outcome: 'applied', removed: ['large-payouts'], added: ['added'], changedIds: ['profile'], revisionBefore: before })
  t.same(ids(), ['added', 'profile'])
  t.equal((await admin('GET', '/policies')).json().lastError, null, 'the refusal is forgotten')
  const [event] = await audit.query({ event: 'policy.reloaded', limit: 10 })
  t.match(event, { revisionBefore: before, revisionAfter: holder.current.revision, added: ['added'], removed: ['large-payouts'], changed: ['profile'] })
  t.match((await admin('GET', '/metrics')).body, /stepup_policy_reloads_total\{outcome="applied"\} 1/)
  t.equal((await admin('POST', '/policies/reload?allowRemovals=yes')).statusCode, 400, 'a bad value is a 400')
})

t.test('a .allow-removals file in the folder confirms removals; SIGHUP-style reloads confirm by themselves', async t => {
  const { dir, reloader, ids } = await setup(t)
  unlinkSync(join(dir, 'payouts.yaml'))
  t.equal((await reloader.reload('watch')).outcome, 'removal_refused')
  writeFileSync(join(dir, '.allow-removals'), '')
  t.equal((await reloader.reload('watch')).outcome, 'applied')
  t.same(ids(), ['profile'])
  unlinkSync(join(dir, '.allow-removals'))
  writeFileSync(join(dir, 'other.yaml'), 'policies: []\n')
  t.equal((await reloader.reload('watch')).outcome, 'removal_refused')
  t.equal((await reloader.reload('SIGHUP', { allowRemovals: true })).outcome, 'applied')
  t.same(ids(), [])
})

t.test('moving a policy to another file is not a removal', async t => {
  const { dir, reloader, ids } = await setup(t)
  unlinkSync(join(dir, 'payouts.yaml'))
  writeFileSync(join(dir, 'other.yaml'), OTHER + PAYOUT.replace('policies:\n', ''))
  const result = await reloader.reload('move')
  t.match(result, { outcome: 'applied', removed: [], added: [], changedIds: [] })
  t.same(ids(), ['large-payouts', 'profile'])
})

t.test('dropping issuers, callers or routes is a removal too: a truncated gateway file never turns token checks off', async t => {
  const { dir, reloader, holder } = await setup(t)
  const { gatewayConfigOf } = await import('../../src/policy/gateway-config.js')
  const GATEWAY = 'issuers:\n  - issuer: https://login.example.com/\n    audience: [https://api.example.com]\n'
    + 'callers:\n  - name: nginx\n    tenants: [acme]\n'
    + 'routes:\n  - match: { methods: [POST], path: /v1/payouts/:id }\n    action: payments.payout\n'
  writeFileSync(join(dir, 'gateway.yaml'), GATEWAY)
  t.equal((await reloader.reload('watch')).outcome, 'applied')
  t.equal(gatewayConfigOf(holder.current).issuers.length, 1)

  writeFileSync(join(dir, 'gateway.yaml'), '')
  const truncated = await reloader.reload('watch')
  t.equal(truncated.outcome, 'removal_refused', 'an emptied gateway file is refused')
  t.match(truncated.errors.join('\n'), /would remove caller nginx, issuer https:\/\/login\.example\.com\/, route POST \/v1\/payouts\/:id/)
  t.equal(gatewayConfigOf(holder.current).issuers.length, 1, 'the issuer keeps being enforced')

  unlinkSync(join(dir, 'gateway.yaml'))
  t.equal((await reloader.reload('watch')).outcome, 'removal_refused', 'a deleted gateway file is refused')
  t.equal((await reloader.reload('sighup', { allowRemovals: true })).outcome, 'applied', 'a confirmed removal applies')
  t.equal(gatewayConfigOf(holder.current).issuers.length, 0)
})

// The decision service returns the engine's trace only when asked; reasons, reportOnly and the
// fired policies are views of that trace, whether or not it is returned.
import t from 'tap'
import { pino } from 'pino'
import { parseDecideRequest } from '../../src/contract/index.js'
import { firedPolicies, reasonsOf, reportOnlyOf } from '../../src/engine/decide.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { createDecisionService } from '../../src/service.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { EXAMPLE_POLICIES, NOW_MS, NOW_S, policySet } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const set = await policySet(EXAMPLE_POLICIES)
const service = createDecisionService({
  policies: new PolicyHolder(set, () => NOW_MS),
  geo,
  history: createMemoryHistoryStore({ maxSubjects: 100 }),
  logger: pino({ level: 'silent' }),
  now: () => NOW_MS
})

const bodies = {
  stepUp: { action: 'payments.payout', subject: { id: 'tr-1' }, claims: { amr: ['pwd'], auth_time: NOW_S - 60 }, context: { amount: 2500 } },
  report: { action: 'admin.roles.grant', subject: { id: 'tr-2' }, claims: { amr: ['pwd'], auth_time: NOW_S - 60 } },
  deny: { action: 'profile.read', subject: { id: 'tr-3' }, claims: { amr: ['pwd'], auth_time: NOW_S - 60 }, ip: '198.51.100.7' }
}

for (const [name, body] of Object.entries(bodies)) {
  t.test(name, async t => {
    const request = parseDecideRequest(body, set.assurance)
    const plain = await service.decide(request)
    t.equal(plain.decision.trace, undefined, 'no trace unless asked')
    t.equal(plain.policyRevision, set.revision)
    const traced = await service.decide(request, { trace: true })
    const trace = traced.decision.trace!
    t.ok(trace.policies.length > 0, 'every matched policy is in the trace')
    t.same(traced.decision.reasons, reasonsOf(trace), 'reasons are a view of the trace')
    t.same(traced.decision.reportOnly, reportOnlyOf(trace), 'reportOnly too')
    t.same(traced.decision.policies, firedPolicies(trace), 'and the fired policies')
    t.same(plain.decision.reasons, traced.decision.reasons, 'asking for the trace changes nothing else')
    t.same(plain.decision.reportOnly, traced.decision.reportOnly)
    for (const p of trace.policies) {
      const policy = set.policies.find(x => x.id === p.policy)!
      t.equal(p.triggers.length, p.outcome === 'overridden' ? 0 : policy.triggers.length, `${p.policy}: one entry per trigger, in order`)
      p.triggers.forEach((x, i) => t.equal(x.kind, policy.triggers[i]!.kind))
    }
  })
}

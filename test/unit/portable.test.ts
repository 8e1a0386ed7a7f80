// The compiled set that crosses from the loading worker decides exactly like one compiled here.
import t from 'tap'
import { checkFolder } from '../../src/policy/load.js'
import { fromPortable, toPortable } from '../../src/policy/portable.js'
import { gatewayConfigOf } from '../../src/policy/gateway-config.js'
import { decide } from '../../src/engine/decide.js'
import type { DecisionRequest, Facts } from '../../src/engine/model.js'

t.test('the example policies: same policies, learning tables and decisions after the round trip', async t => {
  const { set, sources } = await checkFolder('policies')
  t.ok(set)
  const copy = await fromPortable(structuredClone(toPortable(set!, sources.lists)))
  t.equal(copy.hash, set!.hash)
  t.equal(copy.revision, set!.revision)
  t.same(copy.policies.map(p => p.id), set!.policies.map(p => p.id))
  const tenants = [undefined, 'acme', 'globex', ...set!.policies.map(p => p.scope.tenant)]
  for (const tenant of tenants) t.same(copy.learning.forTenant(tenant), set!.learning.forTenant(tenant), `learning for ${tenant ?? '(none)'}`)
  t.equal(copy.learning.retentionDays, set!.learning.retentionDays)
  t.same(copy.ipLists.names, set!.ipLists.names)
  const now = 1_800_000_000
  let compared = 0
  for (const policy of set!.policies) {
    for (const action of policy.actions.map(a => a.replace(/\*\*?/g, 'x'))) {
      for (const amr of [['pwd'], ['pwd', 'otp'], ['hwk', 'pin']]) {
        const request: DecisionRequest = {
          action, tenant: policy.scope.tenant, application: policy.scope.application, subjectId: 'u1', enrolledFactors: undefined,
          claims: { amr, auth_time: now - 60 }, ip: '203.0.113.9', deviceId: 'd1', resource: undefined, context: { amount: 5000 }
        }
        const facts: Facts = { request, geo: { status: 'none' }, history: { status: 'skipped' }, ipLists: copy.ipLists.lookup('203.0.113.9'), onceOnly: { status: 'found', consumed: false } }
        const a = decide(set!, set!.plan(request), facts, now)
        const b = decide(copy, copy.plan(request), facts, now)
        t.same(b, a, `${action} ${amr.join('+')}`)
        compared++
      }
    }
  }
  t.ok(compared > 20, `${compared} decisions compared`)
})

t.test('issuers, callers and routes cross with the set: a set loaded in the worker verifies tokens and maps routes like one compiled here', async t => {
  const { set, sources } = await checkFolder('examples/policies')
  t.ok(set)
  const copy = await fromPortable(structuredClone(toPortable(set!, sources.lists)))
  const a = gatewayConfigOf(set!)
  const b = gatewayConfigOf(copy)
  t.equal(a.issuers.length, 1, 'the example folder declares an issuer')
  t.same(b.issuers, a.issuers)
  t.same([...b.callers], [...a.callers])
  t.equal(b.routes.size, a.routes.size)
  const request = { method: 'POST', host: 'api.example.com', url: '/v1/payouts/p-42?x=1', headers: { 'x-payout-amount': '2500' } }
  t.same(b.routes.map(request), a.routes.map(request))
})

t.test('the worker loader keeps the gateway sections (a reload never drops the issuers)', async t => {
  const { loadInWorker } = await import('../../src/policy/worker-load.js')
  const loaded = await loadInWorker('examples/policies')
  t.equal(gatewayConfigOf(loaded.set).issuers.length, 1)
  t.equal(gatewayConfigOf(loaded.set).routes.size, gatewayConfigOf((await checkFolder('examples/policies')).set!).routes.size)
})

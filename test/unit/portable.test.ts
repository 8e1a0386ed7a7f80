// The compiled set that crosses from the loading worker decides exactly like one compiled here.
import t from 'tap'
import { checkFolder } from '../../src/policy/load.js'
import { fromPortable, toPortable } from '../../src/policy/portable.js'
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

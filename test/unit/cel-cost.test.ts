// Conditions are bounded in cost over any caller data: a condition whose worst case over a
// request within the size limits exceeds the budget is refused when the policy loads.
import t from 'tap'
import { compileCondition } from '../../src/policy/cel.js'
import { COST_BUDGET } from '../../src/policy/cel-cost.js'
import { loadPolicySet } from '../../src/policy/load.js'
import { EXAMPLE_POLICIES } from '../helpers/app.js'

t.test('quadratic conditions over caller data are refused, naming the cost', async t => {
  for (const source of [
    'context.a.exists(r, r in context.b)',
    'context.a.exists(x, x + context.s == "y")',
    'context.a.all(x, context.s.contains(x))',
    "context.a.exists(x, context.s.matches('a'))",
    'size(context.a.filter(x, x in claims.amr)) > 0',
    'context.a.map(x, context.b + x).size() > 1',
    'claims.amr.exists(a, a in context.list)'
  ]) {
    t.throws(() => compileCondition(source), /could cost up to .* steps/, source)
  }
})

t.test('linear conditions load', async t => {
  for (const source of [
    "has(context.amount) && context.amount > 1000 && 'tor' in signals.ipLists",
    "context.tags.exists(x, x in ['a', 'b', 'c'])",
    "context.emails.exists(e, e.matches('@corp[.]example$'))",
    "claims.amr.exists(a, a == 'hwk') && claims.amr.all(a, a != 'sms')",
    "context.m.exists(k, k in {'a': 1, 'b': 2})",
    "size(context.list) > 3 && context.name.startsWith('adm')",
    "context.a.filter(x, x > 3).size() > 2 || context.s.contains('x')",
    'context.a.exists(x, x == context.b)'
  ]) {
    t.doesNotThrow(() => compileCondition(source), source)
  }
})

t.test('the example policies stay within the budget', async t => {
  const { set } = await loadPolicySet(EXAMPLE_POLICIES)
  t.ok(set.policies.length > 0)
  t.ok(COST_BUDGET > 0)
})

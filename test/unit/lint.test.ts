// Policy warnings (src/policy/lint.ts): valid sets that cannot do what their author meant.
import t from 'tap'
import { actionMatches } from '../../src/engine/actions.js'
import { formatProblem } from '../../src/errors.js'
import { compileCondition } from '../../src/policy/cel.js'
import { compilePolicies } from '../../src/policy/compile.js'
import { commonAction, patternsCover, patternsOverlap, scopeContains, scopesOverlap } from '../../src/policy/lint.js'

const compile = (yaml: string, lists: Record<string, string> = {}): ReturnType<typeof compilePolicies> =>
  compilePolicies({
    policies: [{ file: 'p.yaml', text: yaml }],
    lists: Object.entries(lists).map(([name, text]) => ({ name, file: `lists/${name}.txt`, text }))
  })

const warningsOf = (yaml: string, lists: Record<string, string> = {}): string[] => {
  const r = compile(yaml, lists)
  if (!r.set) throw new Error('expected a valid set: ' + r.problems.map(formatProblem).join('; '))
  return r.problems.filter(p => p.severity === 'warning').map(formatProblem)
}
const warnings = warningsOf

const policies = (...lines: string[]): string => ['policies:', ...lines.map(l => `  - ${l}`)].join('\n') + '\n'

t.test('glob overlap: * is one segment, ** one or more', async t => {
  const cases: Array<[string, string, boolean]> = [
    ['a.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.**', 'a.b.c', true],
    ['a.**', 'a', false], // ** needs at least one segment
    ['**', 'x', true],
    ['*.b', 'a.*', true],
    ['*.b.**', 'a.*', false], // 3+ segments against exactly 2
    ['a.**.z', 'a.*.*', true],
    ['a.**.z', 'a.*.y', false],
    ['**.x', 'y.**', true],
    ['a.**.b.**', '**.c', true],
    ['payments.**', 'account.**', false],
    ['*', '*.*', false],
    ['**', '*.*.*', true]
  ]
  for (const [a, b, expected] of cases) {
    t.equal(patternsOverlap(a, b), expected, `${a} ~ ${b}`)
    t.equal(patternsOverlap(b, a), expected, `${b} ~ ${a}`)
  }
})

t.test('glob overlap gives an action that both patterns match', async t => {
  t.equal(commonAction('payments.*', 'payments.payout'), 'payments.payout')
  t.equal(commonAction('a.*', '*.b'), 'a.b')
  t.equal(commonAction('*', '**'), 'x')
  t.equal(commonAction('a', 'b'), undefined)
  for (const [a, b] of [['x.**', '*.*'], ['a.**.z', 'a.*.*'], ['**.x', 'y.**'], ['*.*.*', 'x.**'], ['a.**.b.**', '**.c']] as const) {
    const example = commonAction(a, b)!
    t.ok(actionMatches(a, example) && actionMatches(b, example), `${example} matches ${a} and ${b}`)
  }
})

t.test('glob cover: every action of the covered set matches some pattern of the cover', async t => {
  t.ok(patternsCover(['**'], ['a.b', 'c.**']))
  t.ok(patternsCover(['a.**'], ['a.*', 'a.b.c', 'a.*.**']))
  t.notOk(patternsCover(['a.*'], ['a.**']), 'a.* misses a.b.c')
  t.ok(patternsCover(['a.*', 'a.*.**'], ['a.**']), 'the union counts')
  t.notOk(patternsCover(['a.b', 'a.c'], ['a.*']))
  t.ok(patternsCover(['*.*'], ['a.b', 'x.*']))
  t.notOk(patternsCover(['admin.users.*'], ['admin.**']))
  t.ok(patternsCover(['**.delete'], ['admin.users.delete', 'a.**.delete']))
  t.notOk(patternsCover(['**.delete'], ['a.**']))
  t.ok(patternsCover(['x'], []), 'the empty set is covered')
})

t.test('scopes: overlap and containment', async t => {
  t.ok(scopesOverlap({}, { tenant: 'a' }))
  t.ok(scopesOverlap({ tenant: 'a' }, { application: 'w' }), 'tenant a and application w meet at (a, w)')
  t.notOk(scopesOverlap({ tenant: 'a' }, { tenant: 'b' }))
  t.notOk(scopesOverlap({ tenant: 'a', application: 'w' }, { application: 'v' }))
  t.ok(scopeContains({}, { tenant: 'a' }))
  t.ok(scopeContains({ tenant: 'a' }, { tenant: 'a', application: 'w' }))
  t.notOk(scopeContains({ tenant: 'a' }, {}))
  t.notOk(scopeContains({ tenant: 'a', application: 'w' }, { tenant: 'a' }))
})

t.test('the example policies have no warning', async t => {
  const { readPolicyFolder } = await import('../../src/policy/source.js')
  const r = compilePolicies(await readPolicyFolder('policies'))
  t.ok(r.set)
  t.same(r.problems.map(formatProblem), [])
})

t.test('(a) an override that can never take effect', async t => {
  t.test('disjoint scopes', async t => {
    const w = warnings(policies(
      '{ id: a, scope: { tenant: acme }, actions: [x] }',
      '{ id: b, scope: { tenant: beta }, overrides: a, actions: [x] }'
    ))
    t.equal(w.length, 1)
    t.match(w[0], /^p\.yaml:3:\d+ policies\[1\]\.overrides: never takes effect: this policy applies to tenant beta, "a" \(p\.yaml:2\) only to tenant acme/)
  })
  t.test('disjoint actions', async t => {
    const w = warnings(policies(
      '{ id: a, actions: ["payments.**"] }',
      '{ id: b, scope: { tenant: acme }, overrides: a, actions: ["account.*", "payments"] }'
    ))
    t.equal(w.length, 1)
    t.match(w[0], /policies\[1\]\.overrides: never takes effect: no action matches both this policy's actions \[account\.\*, payments\] and those of "a"/)
  })
  t.test('a narrower override is fine', async t => {
    t.same(warnings(policies(
      '{ id: a, scope: { tenant: acme }, actions: ["treasury.**"] }',
      '{ id: b, scope: { tenant: acme, application: desk }, overrides: a, actions: ["treasury.**"] }'
    )), [])
  })
})

t.test('(b) a policy that another scope always overrides', async t => {
  const w = warnings(policies(
    '{ id: target, scope: { tenant: acme }, actions: ["admin.users.*", admin.roles.grant] }',
    '{ id: everywhere, overrides: target, actions: ["admin.**"] }'
  ))
  t.equal(w.length, 1)
  t.match(w[0], /^p\.yaml:2:\d+ policies\[0\]: never applies: "everywhere" \(p\.yaml:3, everywhere\) overrides it for every action and scope it has/)

  t.same(warnings(policies(
    '{ id: target, actions: ["admin.users.*", admin.roles.grant] }',
    '{ id: part, overrides: target, actions: ["admin.users.*"] }'
  )), [], 'an override covering part of the actions leaves the rest')
  t.same(warnings(policies(
    '{ id: target, actions: ["admin.**"] }',
    '{ id: acme, scope: { tenant: acme }, overrides: target, actions: ["**"] }'
  )), [], 'an override in a narrower scope leaves the other tenants')
  t.equal(warnings(policies(
    '{ id: target, actions: ["admin.**"] }',
    '{ id: one, overrides: target, actions: ["admin.*"] }',
    '{ id: more, overrides: target, actions: ["admin.*.**"] }'
  )).length, 1, 'several overriders together')
})

t.test('(c) overlapping policies whose factors cannot intersect', async t => {
  // Requirements restricted to totp or sms also get the acr warning (f); these cases are about (c).
  const warnings = (yaml: string): string[] => warningsOf(yaml).filter(w => !w.includes('no configured acr value'))
  const w = warnings(policies(
    '{ id: hw, actions: [payments.wire], require: { aal: 3, factors: [security_key] } }',
    '{ id: otp, actions: ["payments.*"], require: { aal: 2, factors: [totp, sms] } }'
  ))
  t.equal(w.length, 1)
  t.match(w[0], /^p\.yaml:3:\d+ policies\[1\]\.require\.factors: cannot be met together with "hw" \(p\.yaml:2\): both apply to payments\.wire and their factors \[security_key\] and \[totp, sms\] have no class in common; when both fire the request is denied/)

  const aal = warnings(policies(
    '{ id: strong, actions: ["**"], scope: { tenant: acme }, require: { aal: 3 } }',
    '{ id: soft, actions: [reports.export], scope: { application: web }, require: { aal: 2, factors: [passkey, totp] } }'
  ))
  t.equal(aal.length, 1, 'a common class that cannot reach the higher AAL')
  t.match(aal[0], /both apply to reports\.export \(tenant acme, application web\) and the merged requirement \(aal 3, factors \[passkey, totp\]\) is met by no factor class/)

  const many = warnings(policies(
    '{ id: a1, actions: [x], require: { aal: 3, factors: [security_key] } }',
    '{ id: b1, actions: ["*"], require: { aal: 3 } }',
    '{ id: a2, actions: ["**"], require: { aal: 3, factors: [security_key] } }',
    '{ id: c1, actions: [x], require: { factors: [passkey] } }',
    '{ id: b2, actions: [x], require: { aal: 3 } }',
    '{ id: c2, actions: [x], require: { factors: [passkey] } }',
    '{ id: q, actions: [x], require: { aal: 2, factors: [totp] } }'
  )).filter(w => w.includes('policies[6]'))
  t.equal(many.length, 1, 'one warning per policy, whatever the requirements it conflicts with')
  t.match(many[0], /cannot be met together with "a1" \(p\.yaml:2\): both apply to x and their factors \[security_key\] and \[totp\] have no class in common; .*; likewise with "b1", "a2", "c1" and 2 more$/)

  t.same(warnings(policies(
    '{ id: a, actions: [x], scope: { tenant: one }, require: { aal: 3, factors: [security_key] } }',
    '{ id: b, actions: [x], scope: { tenant: two }, require: { factors: [totp] } }'
  )), [], 'disjoint scopes never apply together')
  t.same(warnings(policies(
    '{ id: a, actions: [x.y], require: { aal: 3, factors: [security_key] } }',
    '{ id: b, actions: ["x.*.z"], require: { factors: [totp] } }'
  )), [], 'disjoint actions never apply together')
  t.same(warnings(policies(
    '{ id: a, actions: [x], require: { aal: 3, factors: [security_key] } }',
    '{ id: b, actions: [x], effect: deny }',
    '{ id: c, actions: [x], mode: report, require: { factors: [totp] } }'
  )), [], 'deny and report-only policies are not merged')
  t.same(warnings(policies(
    '{ id: a, scope: { tenant: t }, actions: [x], require: { aal: 3, factors: [security_key] } }',
    '{ id: b, scope: { tenant: t, application: w }, overrides: a, actions: [x], require: { factors: [totp] } }'
  )), [], 'an override replaces its target, so they are never merged')
})

t.test('(f) a requirement that no configured acr value expresses', async t => {
  const w = warnings(policies(
    '{ id: otp, actions: [a], require: { aal: 2, factors: [totp, sms] } }',
    '{ id: phr, actions: [b], require: { aal: 2, factors: [passkey, security_key, smart_card] } }',
    '{ id: key3, actions: [c], require: { aal: 3, factors: [security_key, smart_card] } }',
    '{ id: card, actions: [d], require: { aal: 2, factors: [smart_card] } }',
    '{ id: any, actions: [e], require: { aal: 2 } }'
  ))
  t.equal(w.length, 2, 'phr, phrh and the plain AAL URIs express the others; no challenge acr proves a smart card alone')
  t.match(w[0], /^p\.yaml:2:\d+ policies\[0\]\.require\.factors: no configured acr value expresses this requirement \(aal 2, factors \[totp, sms\]\): its challenge asks for \[http:\/\/idmanagement\.gov\/ns\/assurance\/aal\/2\]/)

  const keyOnly = warnings(policies('{ id: key, actions: [a], require: { aal: 3, factors: [security_key] } }'))
  t.equal(keyOnly.length, 1, 'phrh stands for a security key or a smart card: it cannot express "security key only"')
  t.match(keyOnly[0], /no configured acr value expresses this requirement \(aal 3, factors \[security_key\]\)/)

  const mapped = warnings('assurance:\n  acr:\n    "urn:acme:otp": { aal: 2, proves: [totp] }\n  challengeAcr:\n    aal2: ["urn:acme:otp", "http://idmanagement.gov/ns/assurance/aal/2"]\n'
    + policies('{ id: otp, actions: [a], require: { aal: 2, factors: [totp] } }'))
  t.same(mapped, [], 'an acr value that proves the class, asked for by the challenge, expresses it')

  const low = warnings('assurance:\n  challengeAcr:\n    aal3: ["urn:acme:unknown"]\n' + policies('{ id: high, actions: [a], require: { aal: 3 } }'))
  t.equal(low.length, 1, 'an acr value that maps to no AAL expresses nothing')
  t.match(low[0], /which map to a lower AAL/)
})

t.test('(d) triggers whose parameters make them never fire', async t => {
  const w = warnings(policies(
    '{ id: far, actions: ["**"], when: [{ impossibleTravel: { minDistanceKm: 20100 } }, { impossibleTravel: { minDistanceKm: 20000 } }] }',
    '{ id: lists, actions: ["**"], when: [{ ipList: { lists: [empty] } }, { ipList: { lists: [empty, full] } }], effect: deny }',
    '{ id: constant, actions: ["**"], when: [{ condition: "1 > 2" }, { condition: "true" }] }'
  ), { empty: '# nothing yet\n\n', full: '192.0.2.0/24\n' })
  t.equal(w.length, 3)
  t.match(w[0], /^p\.yaml:2:\d+ policies\[0\]\.when\[0\]\.impossibleTravel\.minDistanceKm: never fires: no two places on Earth are more than 20,015 km apart/)
  t.match(w[1], /policies\[1\]\.when\[0\]\.ipList\.lists: never fires: lists\/empty\.txt holds no address/)
  t.match(w[2], /policies\[2\]\.when\[0\]\.condition: never fires: the condition reads no variable and is always false/)
})

t.test('(d) riskScore above 1 never fires (the schema refuses it; the check guards compiled sets)', async t => {
  const { lintPolicies } = await import('../../src/policy/lint.js')
  const r = compile(policies('{ id: risk, actions: ["**"], when: [{ riskScore: { atLeast: 1 } }] }'))
  const policy = { ...r.set!.policies[0]!, triggers: [{ kind: 'riskScore' as const, atLeast: 1.5 }] }
  const out: string[] = []
  lintPolicies([policy], r.set!.assurance, [], (_p, path, message) => out.push(`${path.join('.')}: ${message}`))
  t.same(out, ['when.0.riskScore.atLeast: never fires: the risk score is at most 1 (atLeast 1.5)'])
  t.same(warnings(policies('{ id: risk, actions: ["**"], when: [{ riskScore: { atLeast: 1 } }] }')), [], 'a caller score of 1 reaches atLeast 1')
})

t.test('(e) a condition reading an optional context field without has()', async t => {
  const w = warnings(policies(
    '{ id: amount, actions: ["**"], when: [{ condition: "context.amount > 1000 && context.currency == \'EUR\'" }] }',
    '{ id: guarded, actions: ["**"], when: [{ condition: "has(context.amount) && context.amount > 1000" }] }'
  ))
  t.equal(w.length, 1)
  t.match(w[0], /^p\.yaml:2:\d+ policies\[0\]\.when\[0\]\.condition: reads context\.amount, context\.currency without has\(\): when a request omits one, the condition errors and fires the policy \(fail closed\); guard it: has\(context\.amount\) && …/)
})

t.test('unguarded context reads, as cel.ts records them', async t => {
  const unguarded = (source: string): readonly string[] => compileCondition(source).unguardedContext
  t.same(unguarded('context.amount > 1000'), ['context.amount'])
  t.same(unguarded('has(context.amount) && context.amount > 1000'), [])
  t.same(unguarded('has(context.amount) ? context.amount > 1 : false'), [])
  t.same(unguarded("'amount' in context && context['amount'] > 1"), [])
  t.same(unguarded("context['amount'] > 1"), ['context.amount'])
  t.same(unguarded('has(context.order) && context.order.total > 5'), ['context.order.total'], 'the nested field is still optional')
  t.same(unguarded('has(context.order.total) && context.order.total > 5'), [], 'a guard covers the path and its prefixes')
  t.same(unguarded('context.items.exists(i, i > 2)'), ['context.items'])
  t.same(unguarded('size(context) > 2 && claims.amr.exists(a, a == "hwk")'), [], 'context itself always exists; claims are not context')
  t.same(unguarded('context[claims.sub] == true'), [], 'a computed key reads no known field')
  t.same(unguarded('[1, 2].exists(context, context > 1)'), [], 'a comprehension variable shadows the global')
})

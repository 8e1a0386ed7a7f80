import t from 'tap'
import { compilePolicies } from '../../src/policy/compile.js'
import { compileCondition } from '../../src/policy/cel.js'
import { formatProblem } from '../../src/errors.js'

const compile = (files: Record<string, string>, lists: Record<string, string> = {}): ReturnType<typeof compilePolicies> =>
  compilePolicies({
    policies: Object.entries(files).map(([file, text]) => ({ file, text })),
    lists: Object.entries(lists).map(([name, text]) => ({ name, file: `lists/${name}.txt`, text }))
  })

const errors = (r: ReturnType<typeof compilePolicies>): string[] =>
  r.problems.filter(p => p.severity === 'error').map(formatProblem)

t.test('every problem of a folder is reported together, as file:line:col field: problem, sorted', async t => {
  const r = compile({
    'b.yaml': 'policies:\n  - id: b1\n    actions: [x]\n    require: { aal: 5 }\n',
    'a.yaml': 'policies:\n  - id: a1\n    actions: [x]\n    colour: red\n  - id: a2\n    actions: [y]\n    when:\n      - condition: context.amount >\n'
  })
  t.equal(r.set, undefined)
  t.same(errors(r), [
    'a.yaml:4:5 policies[0].colour: unknown field; expected one of: id, description, scope, overrides, actions, when, effect, require, exemptions, lockout, message, mode',
    errors(r)[1],
    'b.yaml:4:21 policies[0].require.aal: must be one of 1, 2, 3'
  ])
  t.match(errors(r)[1], /^a\.yaml:8:\d+ policies\[1\]\.when\[0\]\.condition: invalid CEL/)
})

t.test('YAML syntax errors carry their position', async t => {
  t.match(errors(compile({ 'x.yaml': 'policies:\n  - id: [broken\n' })), [/^x\.yaml:\d+:\d+ \(yaml\): /])
})

t.test('semantic errors: duplicate ids, unknown overrides, cycles, unreachable requirements, missing lists', async t => {
  const r = compile({
    'p.yaml': [
      'policies:',
      '  - { id: a, actions: [x] }',
      '  - { id: a, actions: [y] }',
      '  - { id: b, actions: [x], overrides: nope }',
      '  - { id: c, actions: [x], overrides: d }',
      '  - { id: d, actions: [x], overrides: c }',
      '  - { id: e, actions: [x], require: { aal: 3, factors: [totp] } }',
      '  - { id: f, actions: [x], when: [{ ipList: { lists: [tor] } }] }',
      '  - { id: g, actions: [x], require: { factors: [retina] } }',
      '  - { id: h, actions: [x], effect: deny, require: { aal: 2 } }',
      '  - { id: i, actions: [x], mode: report, overrides: a }',
      '  - { id: j, actions: ["**.**.**"] }',
      '  - { id: k, actions: [x], overrides: k }'
    ].join('\n')
  })
  const text = errors(r).join('\n')
  t.match(text, /p\.yaml:3:\d+ policies\[1\]\.id: duplicate id "a" \(first defined at p\.yaml:2\)/)
  t.match(text, /policies\[2\]\.overrides: no policy with id "nope"/)
  t.match(text, /overrides form a cycle: c -> d -> c/)
  t.match(text, /policies\[5\]\.require\.factors: no factor class can meet aal 3 with factors \[totp\]/)
  t.match(text, /policies\[6\]\.when\[0\]\.ipList\.lists: no list file lists\/tor\.txt/)
  t.match(text, /policies\[7\]\.require\.factors\[0\]: unknown factor class "retina"/)
  t.match(text, /policies\[8\]\.require: a deny policy has no requirement/)
  t.match(text, /policies\[9\]\.overrides: a report-only policy cannot override/)
  t.match(text, /policies\[10\]\.actions\[0\]: at most two "\*\*"/)
  t.match(text, /policies\[11\]\.overrides: a policy cannot override itself/)
})

t.test('only one file may hold assurance', async t => {
  const r = compile({ 'a.yaml': 'assurance: { clockSkew: 10s }\n', 'b.yaml': 'assurance: { clockSkew: 20s }\n' })
  t.match(errors(r), [/^b\.yaml:1:1 assurance: only one file may hold assurance/])
})

t.test('defaults: step_up, aal 2, any factor, 15 minutes, enforce, fires always', async t => {
  const r = compile({ 'p.yaml': 'policies:\n  - { id: p, actions: [x] }\n' })
  const p = r.set!.policies[0]!
  t.same(p.require, { aal: 2, factors: null, maxAge: 900, scopes: [] })
  t.equal(p.effect, 'step_up')
  t.equal(p.mode, 'enforce')
  t.same(p.triggers, [{ kind: 'always' }])
})

t.test('durations convert to seconds; sub-second units are refused', async t => {
  const r = compile({ 'p.yaml': 'policies:\n  - { id: p, actions: [x], require: { maxAge: 1.5h } }\n  - { id: q, actions: [y], require: { maxAge: 90 } }\n' })
  t.same(r.set!.policies.map(p => p.require.maxAge), [5400, 90])
  t.match(errors(compile({ 'p.yaml': 'policies:\n  - { id: p, actions: [x], require: { maxAge: 100ms } }\n' })), [/must be a duration/])
})

t.test('assurance.factors moves an amr value to another class', async t => {
  const r = compile({ 'a.yaml': 'assurance:\n  factors:\n    security_key: { amr: [swk] }\n' })
  const a = r.set!.assurance
  t.equal(a.amrToFactor.get('swk')?.name, 'security_key')
  t.equal(a.amrToFactor.get('hwk')?.name, 'security_key')
  t.notOk(a.factorByName.get('passkey')!.amr.includes('swk'))
})

t.test('a clock skew above 10 minutes is refused', async t => {
  t.match(errors(compile({ 'a.yaml': 'assurance: { clockSkew: 1h }\n' })), [/clockSkew: at most 10m/])
})

t.test('CEL conditions are checked when they load', async t => {
  t.throws(() => compileCondition('foo.bar'), /Unknown variable/)
  t.throws(() => compileCondition('signals.newDevic'), /No such key/)
  t.throws(() => compileCondition('1 + 1'), /must be a boolean/)
  t.throws(() => compileCondition('claims.amr.exists(a, claims.amr.all(b, b == a))'), /inside another comprehension/)
  t.throws(() => compileCondition("context.s.matches('(?=a)b')"), /not a valid RE2/)
  t.throws(() => compileCondition('context.s.matches(context.p)'), /literal pattern/)
  t.throws(() => compileCondition(Array.from({ length: 300 }, (_, i) => `context.a${i} == 1`).join(' || ')), /limit|exceed/i)
  const p = compileCondition("has(context.amount) && context.amount > 1000 && 'tor' in signals.ipLists")
  t.ok(p.reads.has('context'))
  t.ok(p.reads.has('signals.ipLists'))
})

t.test('a CEL run-time error is reported, not thrown', async t => {
  const p = compileCondition('context.amount > 1000')
  t.match(p.evaluate({ context: {} }), { error: /amount/ })
  t.same(p.evaluate({ context: { amount: 5000 } }), { value: true })
})

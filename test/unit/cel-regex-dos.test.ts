// matches() runs in linear time with RE2 semantics: patterns that backtrack exponentially in a
// JavaScript RegExp finish fast with the right answer, and patterns RE2 cannot compile are
// refused when the policy loads.
import t from 'tap'
import fc from 'fast-check'
import { compileCondition } from '../../src/policy/cel.js'
import { compilePolicies } from '../../src/policy/compile.js'

const HOSTILE = ['^((a+))+$', '^(a|aa)+$', '^(a|a)*$', '^([)a-z]+)+$']
const lit = (p: string): string => `'${p.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`

function evaluate (pattern: string, input: string): { value: boolean } | { error: string } {
  return compileCondition(`context.s.matches(${lit(pattern)})`).evaluate({ context: { s: input } })
}

function timed<T> (fn: () => T): { result: T, ms: number } {
  const start = performance.now()
  const result = fn()
  return { result, ms: performance.now() - start }
}

t.test('exponential patterns load and finish fast on hostile input, with the right answer', async t => {
  for (const pattern of HOSTILE) {
    t.ok(new RegExp(pattern).test('a'.repeat(12)), 'sanity: the pattern matches a short run of a')
    // 34 characters then one that cannot match: 2^34 paths for a backtracking engine.
    const short = 'a'.repeat(34) + '!'
    const long = 'a'.repeat(50 * 1024) + '!'
    const longMatching = 'a'.repeat(50 * 1024)
    for (const [name, input, expected] of [['34+1 chars', short, false], ['50 KB', long, false], ['50 KB matching', longMatching, true]] as const) {
      const { result, ms } = timed(() => evaluate(pattern, input))
      t.same(result, { value: expected }, `${pattern} on ${name} answers ${String(expected)}`)
      t.ok(ms < 200, `${pattern} on ${name} took ${ms.toFixed(1)} ms (< 200)`)
    }
  }
})

t.test('patterns RE2 cannot compile, or whose program is too large, are refused at load, naming file and line', async t => {
  for (const pattern of ['(a)\\1', '(?=a)b', '(?<!a)b', 'a{2000}', '[z-a]', '(a?){500}a{500}']) {
    t.throws(() => compileCondition(`context.s.matches(${lit(pattern)})`), /pattern|regular expression/i, `${pattern} refused`)
  }
  const files = [{
    file: 'policies.yaml',
    text: [
      'policies:',
      '  - id: p',
      '    actions: [a]',
      '    when:',
      "      - condition: \"context.s.matches('(a)\\\\\\\\1')\"",
      ''
    ].join('\n')
  }]
  const result = compilePolicies({ policies: files, lists: [] })
  t.equal(result.set, undefined, 'the set is refused')
  const problem = result.problems.find(p => p.severity === 'error' && /condition/.test(p.field))
  t.ok(problem, `a problem names the condition: ${JSON.stringify(result.problems)}`)
  t.equal(problem?.file, 'policies.yaml')
  t.equal(problem?.line, 5, 'the line of the condition')
})

t.test('a pattern must still be a literal (compiled once, when the policy loads)', async t => {
  t.throws(() => compileCondition('context.s.matches(context.p)'), /literal pattern/)
})

t.test('a big pattern on a request-sized string is refused by the cost bound, with advice', async t => {
  t.throws(() => compileCondition("context.s.matches('^[a-f0-9]{64}$')"), /could cost up to .*matches\(\) on request data/)
  t.doesNotThrow(() => compileCondition("context.s.matches('^[a-z0-9._%+-]+@corp[.]example$')"), 'a typical pattern loads')
})

t.test('a non-string receiver is a run-time error (counts as fired), not a crash', async t => {
  const r = compileCondition("context.s.matches('a')").evaluate({ context: { s: 12 } })
  t.ok('error' in r, JSON.stringify(r))
})

t.test('differential: RE2 agrees with JavaScript RegExp on patterns both accept', async t => {
  // A safe pattern grammar: literals, classes, anchors, alternation, bounded and simple repeats.
  const atom = fc.constantFrom('a', 'b', 'c', '.', '[ab]', '[^a]', '\\d', '\\w', '\\s', 'x', '-', '\\.', '(?:ab)', '(a|b)')
  const quant = fc.constantFrom('', '', '*', '+', '?', '{2}', '{1,3}', '*?', '+?')
  const piece = fc.tuple(atom, quant).map(([a, q]) => a + q)
  const pattern = fc.tuple(fc.boolean(), fc.array(piece, { minLength: 1, maxLength: 6 }), fc.boolean(), fc.option(fc.array(piece, { minLength: 1, maxLength: 3 })))
    .map(([start, body, end, alt]) => `${start ? '^' : ''}${body.join('')}${alt ? '|' + alt.join('') : ''}${end ? '$' : ''}`)
  const input = fc.stringMatching(/^[abcx1 .\-_]{0,20}$/)
  // Both literal, so the cost bound (which charges big patterns on request-sized strings) stays out of the way.
  const literal = (p: string, s: string): { value: boolean } | { error: string } => compileCondition(`${lit(s)}.matches(${lit(p)})`).evaluate({})
  fc.assert(fc.property(pattern, input, (p, s) => {
    const expected = new RegExp(p).test(s)
    const got = literal(p, s)
    if (!('value' in got) || got.value !== expected) throw new Error(`${p} on ${JSON.stringify(s)}: RE2 ${JSON.stringify(got)}, RegExp ${String(expected)}`)
  }), { numRuns: 2000, seed: 42 })
  t.pass('2000 pattern/input pairs agree')
})

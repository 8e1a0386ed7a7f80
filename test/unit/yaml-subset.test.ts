// The fast YAML subset reader (src/policy/yaml-subset.ts) against `yaml`, the reference: when it
// answers, the data and every mapping's position must be what `yaml` gives; otherwise it gives up.
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml'
import { formatProblem } from '../../src/errors.js'
import { compilePolicies } from '../../src/policy/compile.js'
import { parseYamlSubset } from '../../src/policy/yaml-subset.js'

type Outcome = 'fast' | 'gave up' | 'gave up on valid YAML' | string

function reference (text: string): { data: unknown, contents: Node | null } | { errors: string[] } {
  const doc = parseDocument(text, { lineCounter: new LineCounter(), uniqueKeys: true, prettyErrors: false, logLevel: 'error' })
  if (doc.errors.length > 0) return { errors: doc.errors.map(e => e.message) }
  try {
    return { data: doc.toJS({ maxAliasCount: 100 }), contents: doc.contents as Node | null }
  } catch (err) {
    return { errors: [(err as Error).message] }
  }
}

function same (a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b)
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]))
  if (a !== null && typeof a === 'object') {
    if (b === null || typeof b !== 'object' || Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return a === b
}

function positions (node: Node | null, data: unknown, starts: Map<object, number>, out: string[], path: string): void {
  if (isMap(node)) {
    if (starts.get(data as object) !== node.range![0]) out.push(`${path} starts at ${starts.get(data as object)}, yaml says ${node.range![0]}`)
    for (const pair of node.items) {
      const k = String(isScalar(pair.key) ? pair.key.value : pair.key)
      positions(pair.value as Node, (data as Record<string, unknown>)[k], starts, out, `${path}.${k}`)
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => positions(item as Node, (data as unknown[])[i], starts, out, `${path}[${i}]`))
  }
}

function compare (text: string): Outcome {
  const fast = parseYamlSubset(text)
  const ref = reference(text)
  if (fast === undefined) return 'errors' in ref ? 'gave up' : 'gave up on valid YAML'
  if ('errors' in ref) return `answered, but yaml says: ${ref.errors.join('; ')}`
  if (!same(fast.data, ref.data)) return `data ${JSON.stringify(fast.data)}, yaml says ${JSON.stringify(ref.data)}`
  const out: string[] = []
  positions(ref.contents, fast.data, fast.mapStart, out, '$')
  return out.length > 0 ? out.join('; ') : 'fast'
}

t.test('reads what policy files hold, as yaml does', async t => {
  const docs = [
    'policies:\n  - id: a\n    actions: [x.y, "a.*", \'b.**\']\n    require: { aal: 2, factors: [passkey, totp], maxAge: 5m }\n    message: Confirm it\'s you (1).\n',
    '# comment\n---\npolicies:\n- id: a # trailing\n  when:\n  - condition: has(context.amount) && context.amount > 1000\n  -\n    newDevice: { days: 30 }\n\n  # between\n  actions: ["**"]\n',
    'assurance:\n  acr:\n    "urn:x:silver": 2\n    urn:mace:gold: 3\n  factors:\n    passkey: { amr: [hwk, swk], maxAal: 3, phishingResistant: true }\n  clockSkew: 30\n',
    'a: 1\r\nb: [1, -2, +3, 0o17, 0x1F, 1e3, .5, 1., .inf, -.Inf, .NaN, ~, null, Null, true, False, yes, 5m, 1_000]\r\n',
    'a: "esc \\" \\\\ \\/ \\n \\t \\u00e9 \\x41 \\U0001F600"\nb: \'it\'\'s\'\nc: plain: no\n',
    'k:\n  - x\n  -\n  - y\nl:\nm: {}\nn: []\n__proto__: 1\nconstructor: 2\n',
    'a: b]c\nd: e, f\ng: h#i\nj: k [l] {m}\n',
    'policies:\n  - id: a\n    description: >-\n      Folded\n      lines.\n\n      A paragraph.\n    when:\n      - condition: |\n          has(context.amount) &&\n            context.amount > 1000\n\n    actions: [x]\n',
    'a: | # comment\n  # not a comment\n  key: value\n\n\nb:\n- >\n   one\n   two\n- |-\n  x\n# after\nc: 1\n'
  ]
  for (const text of docs) t.equal(compare(text), docs.indexOf(text) === 4 ? 'gave up' : 'fast', JSON.stringify(text))
})

t.test('gives up on what it does not read, whether valid or not', async t => {
  const docs = [
    'a: &x 1\nb: *x\n', 'a: !!str 1\n', 'a: long\n  plain\n', 'a: "two\n  lines"\n',
    'a: [1,\n  2]\n', 'a:\tb\n', '\ufeffa: 1\n', 'a: 1\na: 2\n', 'a: 1\n---\nb: 2\n', '? a\n: b\n', '- - a\n', '1: a\n',
    'true: a\n', 'a: b: c\n', 'a: [1, 2,]\n', 'a: { b }\n', 'a: "\\q"\n', '', '# only a comment\n', 'scalar\n', 'a: 1\n b: 2\n',
    'a: |+\n  x\n', 'a: |2\n   x\n', 'a: |\n\n  x\n', 'a: >\n  x\n    y\n', 'a: |\n  x\n     \nb: 1\n',
    'a:\n  b: 1\n c: 2\n', '%YAML 1.2\n---\na: 1\n', 'a: "x"y\n', 'a : 1\n', '<<: {b: 1}\n', 'a:\n  x\n'
  ]
  for (const text of docs) t.match(compare(text), /^gave up/, JSON.stringify(text))
})

t.test('the repository\'s YAML files', async t => {
  const files = execFileSync('git', ['ls-files', '*.yaml', '*.yml'], { encoding: 'utf8' }).trim().split('\n')
  let fast = 0
  for (const file of files) {
    const outcome = compare(readFileSync(file, 'utf8'))
    if (outcome === 'fast') fast++
    else t.match(outcome, /^gave up/, file)
  }
  t.ok(fast >= files.length / 2, `${fast} of ${files.length} read fast`)
})

/* ---------- generated documents, in and around the subset ---------- */

const KEYS = ['id', 'actions', 'when', 'require', 'aal', 'factors', 'maxAge', 'message', 'a b', 'urn:x:y', 'http://x/y', '1', '01',
  'true', 'True', 'null', '~', '__proto__', 'constructor', '-k', 'k#x', 'k #x', '"quoted"', "'sq'", '"a:b"', '"a: b"', "'it''s'",
  '<<', '?x', 'a[0]', 'a]', 'é', 'k.l', '"\\u00e9"', '"a\\"b"', '.5', '1e3', 'yes', '- k', '&a k', '!t k', '*a', '@k', '%k', 'k{', 'k ']
const SCALARS = ['x', 'hello world', 'svc.res.write', '1', '-0', '+5', '0o17', '0x1F', '0X1F', '1e3', '1E-2', '.5', '1.', '1.50', '.inf',
  '-.Inf', '+.INF', '.NaN', '.nan', '1_000', '0b1', '12345678901234567890', '1.2.3', 'yes', 'True', 'TRUE', 'tRue', 'false', 'null',
  'Null', 'NULL', '~', 'nULL', '5m', 'a: b', 'a #b', 'a#b', "it's", 'say "hi"', '[x]', 'a]b', 'a,b', '{x', '-x', '- x', '-', '--', '*x',
  '&x', '!x', '!!str x', '%x', '@x', '`x', '|', '>', '?x', '? x', ':x', 'x:', 'x:y', 'x: y', '"a\\"b"', '"\\u00e9"', '"\\x41"',
  '"\\q"', '"\\U0001F600"', '"\\uD800"', '"\\U00110000"', "'it''s'", '""', "''", '"a #b"', "'a: b'", '"unterminated', "'unterminated",
  '"a"b', "'a'b", '"\\/"', '"\\ "', '"\\0\\a\\e\\N\\_\\L\\P"', 'has(context.amount) && context.amount > 1000', '!signals.hasHistory',
  '"!signals.hasHistory"', 'a ? b : c', 'x  ', 'x   # c', '…', 'a\\b', '0', '00', '-1.5e+3', '+.5', '.', '...', '---', 'a --- b', '<<', 'x=1']

function generate (seed: number, weird: number): string {
  let s = seed
  const rand = (): number => {
    s = (s + 0x6D2B79F5) | 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const chance = (p: number): boolean => rand() < p
  const pick = <T>(xs: T[], safe = xs.length): T => xs[Math.floor(rand() * (chance(weird) ? xs.length : safe))]!
  const flow = (depth: number): string => {
    const sp = (): string => pick(['', ' ', '  '])
    if (depth > 2 || chance(0.5)) return pick(SCALARS, 3)
    const n = Math.floor(rand() * 4)
    const items = chance(0.5)
      ? Array.from({ length: n }, () => flow(depth + 1))
      : Array.from({ length: n }, () => `${pick(KEYS, 8)}${pick([': ', ':', ' : ', ':  '], 1)}${chance(0.05) ? '' : flow(depth + 1)}`)
    const [open, close] = items.length === 0 || !items[0]!.includes(':') ? ['[', ']'] : ['{', '}']
    return `${open}${sp()}${items.join(pick([', ', ',', ' , ']))}${chance(0.05) ? ',' : ''}${sp()}${close}`
  }
  const comment = (): string => (chance(0.15) ? pick([' # c', '  #c', '#c', ' #', ' # a: b']) : '') + (chance(0.05) ? ' ' : '')
  const inline = (): string => chance(0.3) ? flow(0) : pick(SCALARS, 3)
  /** A block scalar header for a node indented by `indent`, its lines pushed after the current one. */
  const blockScalar = (indent: number): string => {
    const header = pick(['|', '|-', '>', '>-', '| # c', '>- ', '|+', '>+', '|2', '|#c', '|-2', '>1'], 6)
    const base = indent + pick([2, 2, 4, 1, 0, -1], 4)
    const n = 1 + Math.floor(rand() * 4)
    const body: string[] = []
    for (let i = 0; i < n; i++) {
      if (i > 0 && chance(0.25)) body.push(' '.repeat(Math.floor(rand() * (base + 3))))
      const extra = i === 0 ? 0 : pick([0, 0, 0, 1, 2, -1, -2], 3)
      body.push(' '.repeat(Math.max(0, base + extra)) + pick(['text', 'more words here', '# not a comment', 'key: value', '- item', "it's", 'x  ', 'a: b # c', '"q"'], 3))
    }
    if (chance(0.2)) body.push(' '.repeat(Math.floor(rand() * (base + 2))))
    if (chance(0.05)) body.unshift('')
    pending.push(...body)
    return header
  }
  let pending: string[] = []
  const flush = (lines: string[]): void => { lines.push(...pending); pending = [] }
  const noise = (indent: number, lines: string[]): void => {
    if (chance(0.05)) lines.push(pick(['', '   ']))
    if (chance(0.05)) lines.push(' '.repeat(Math.floor(rand() * 6)) + '# comment: x')
    if (chance(0.02)) lines.push(' '.repeat(indent + 2) + 'continued text')
    if (chance(0.01)) lines.push(' '.repeat(Math.max(0, indent - 1)) + 'odd: 1')
    if (chance(0.01)) lines.push(pick(['...', '---']))
  }
  const block = (indent: number, depth: number, lines: string[], prefix?: string): void => {
    const pad = ' '.repeat(indent)
    const kind = depth > 3 ? 'scalar' : pick(depth === 0 ? ['map', 'map', 'map', 'seq'] : ['map', 'map', 'seq', 'scalar'])
    if (kind === 'scalar' && prefix === undefined) { lines.push(pad + inline()); return }
    const n = 1 + Math.floor(rand() * 4)
    for (let i = 0; i < n; i++) {
      const p = i === 0 && prefix !== undefined ? prefix : pad
      const r = rand()
      if (kind !== 'map') {
        if (r < 0.1) { lines.push(`${p}- ${blockScalar(p.length)}`); flush(lines) }
        else if (r < 0.4) lines.push(`${p}- ${inline()}${comment()}`)
        else if (r < 0.7) block(indent + 2, depth + 1, lines, `${p}- ${chance(0.1) ? ' ' : ''}`)
        else if (r < 0.8) { lines.push(`${p}-${comment()}`); if (chance(0.8)) block(indent + pick([1, 2, 4]), depth + 1, lines) }
        else if (r < 0.85 && chance(weird)) lines.push(`${p}- - ${inline()}`)
        else lines.push(`${p}- ${pick(KEYS, 8)}: ${inline()}`)
      } else {
        const key = pick(KEYS, 8)
        if (r < 0.1) { lines.push(`${p}${key}: ${blockScalar(p.length)}`); flush(lines) }
        else if (r < 0.55) lines.push(`${p}${key}:${pick([' ', ' ', '  '])}${inline()}${comment()}`)
        else if (r < 0.8) { lines.push(`${p}${key}:${comment()}`); block(indent + pick([2, 2, 4, 1]), depth + 1, lines) }
        else if (r < 0.9) { lines.push(`${p}${key}:${comment()}`); block(indent, depth + 1, lines, pad + '- ') }
        else lines.push(`${p}${key}:`)
      }
      noise(indent, lines)
    }
  }
  const lines: string[] = []
  if (chance(0.05)) lines.push(pick(['---', '--- # c', '---x', '--- a']))
  if (chance(0.1)) lines.push('# head')
  block(chance(0.1) ? 2 : 0, 0, lines)
  const text = lines.join('\n') + (chance(0.8) ? '\n' : '')
  return chance(0.1) ? text.replace(/\n/g, '\r\n') : text
}

t.test('generated documents: same data and positions as yaml, or gives up', async t => {
  const counts: Record<string, number> = {}
  const failures: string[] = []
  // YAML_SUBSET_DOCS=200000 for a longer run.
  const n = Number(process.env.YAML_SUBSET_DOCS ?? 4000)
  for (let i = 0; i < n; i++) {
    const text = generate(i, [0, 0.05, 0.3][i % 3]!)
    const outcome = compare(text)
    if (outcome === 'fast' || outcome.startsWith('gave up')) counts[outcome] = (counts[outcome] ?? 0) + 1
    else if (failures.length < 5) failures.push(`${outcome}\n${text}`)
  }
  t.same(failures, [])
  t.ok((counts.fast ?? 0) > n / 4, `read ${counts.fast} of ${n} fast`)
})

t.test('problems in files read fast still name yaml\'s positions', async t => {
  const r = compilePolicies({
    policies: [{ file: 'p.yaml', text: 'policies:\n  - id: a\n    actions: [x]\n    require: { aal: 5, colour: red }\n  - id: a\n    actions: [y]\n' }],
    lists: []
  })
  t.same(r.problems.map(formatProblem), [
    'p.yaml:4:21 policies[0].require.aal: must be one of 1, 2, 3',
    'p.yaml:4:24 policies[0].require.colour: unknown field; expected one of: aal, factors, maxAge, scopes',
    'p.yaml:5:9 policies[1].id: duplicate id "a" (first defined at p.yaml:2)'
  ])
})

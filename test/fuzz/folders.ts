/**
 * Fuzzes policy folders: the repository's policies/ mutated line by line, token by token and
 * wholesale (alias bombs, deep nesting, binary, odd encodings), then loaded. Each load must
 * either succeed or reject with a PolicyLoadError whose every problem names a file and a line,
 * within a time limit, without an unhandled rejection.
 * Used by test/fuzz/policies.fuzz.test.ts (bounded) and scripts/fuzz.ts (for minutes).
 */
import fc from 'fast-check'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { PolicyLoadError } from '../../src/errors.js'
import { loadPolicySet } from '../../src/policy/load.js'
import { EXAMPLE_POLICIES } from '../helpers/app.js'
import type { Violation } from './decide-harness.js'

/** A load slower than this is a hang (generous: the machine may be busy; a hang never ends). */
export const LOAD_LIMIT_MS = 30_000

/** The example folder's files (relative path -> text), tests suites and the JSON schema aside. */
function exampleFiles (): Map<string, string> {
  const files = new Map<string, string>()
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (/\.(ya?ml|txt)$/.test(name) && !/\.test\.ya?ml$/.test(name)) files.set(relative(EXAMPLE_POLICIES, path), readFileSync(path, 'utf8'))
    }
  }
  walk(EXAMPLE_POLICIES)
  return files
}

const EXAMPLES = exampleFiles()
const NAMES = [...EXAMPLES.keys()].sort()

const TOKENS = [
  ': ', '- ', '{', '}', '[', ']', ',', '&a ', '*a', '*missing', '<<: *a', '!!binary ', '!!js/function ', '!!python/object ', '!custom ',
  '---\n', '...\n', '%YAML 1.1\n', '%TAG ! tag:x:\n', '\t', '#', '"', "'", '|', '>', '?', '@', '`', '\\', '\u0000', '\ufeff', '\r',
  'null', '~', 'true', 'no', 'on', '0x1F', '0o17', '1e400', '-.inf', '.nan', '2026-11-22', '12:30:00', '"\\ud800"',
  'condition: ', 'actions: ["**"]', 'require: { aal: 9 }', 'maxAge: -1s', 'maxAge: 99999999999d', 'effect: allow',
  'scope: { tenant: [a] }', 'overrides: nothing', 'id: large-payouts', 'lists: [threats, threats]', 'atLeast: 2',
  'condition: context.amount >', "condition: 'a'.matches('(')", 'condition: size(context) > 1 &&', 'assurance:\n  clockSkew: x\n'
]

const scalar = fc.oneof(
  fc.constantFrom('0', '-1', '1.5', '4', '999999999999999999999', 'true', 'null', '[]', '{}', '""', "''", 'x'.repeat(300), '[a, b]', '{ a: 1 }', '"\\u0000"', '"*"', '"**.**"', '".."', '0s', '15m', '1y', '-5m'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 })
)

type Mutation =
  | { op: 'delete' | 'duplicate' | 'indent' | 'dedent', file: number, line: number }
  | { op: 'swap', file: number, line: number, other: number }
  | { op: 'insert', file: number, at: number, text: string }
  | { op: 'truncate', file: number, at: number }
  | { op: 'value', file: number, line: number, value: string }
  | { op: 'replace', file: number, content: string, label: string }
  | { op: 'add', name: string, content: string, label: string }

const nat = fc.nat(10_000)
const file = fc.nat(NAMES.length - 1)

const billionLaughs = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
  'policies: *i', ''
].join('\n')

const WHOLE: Array<[string, string]> = [
  ['alias bomb', billionLaughs],
  ['flow nesting 20000 deep', `policies: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`],
  ['block nesting 2000 deep', 'policies:\n' + Array.from({ length: 2000 }, (_, i) => `${' '.repeat(2 * i + 2)}- a:`).join('\n') + '\n'],
  ['a 1 MB comment', `# ${'x'.repeat(1_000_000)}\npolicies: []\n`],
  ['10,000 policies', 'policies:\n' + Array.from({ length: 10_000 }, (_, i) => `  - { id: p${i}, actions: [a${i}.x] }`).join('\n') + '\n'],
  ['binary', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256)).toString('latin1')],
  ['empty', ''],
  ['only a BOM', '\ufeff'],
  ['UTF-16 text', Buffer.from('policies: []\n', 'utf16le').toString('latin1')],
  ['CRLF line ends', 'policies:\r\n  - id: crlf\r\n    actions: [crlf.x]\r\n'],
  ['a document stream', 'policies: []\n---\npolicies: []\n'],
  ['a scalar', 'just a string\n'],
  ['a list', '- a\n- b\n'],
  ['a long regex', `policies:\n  - id: re\n    actions: [re.x]\n    when:\n      - condition: "subject.id.matches('${'(a|b)'.repeat(500)}')"\n`],
  ['an exponential regex', 'policies:\n  - id: redos\n    actions: [re.x]\n    when:\n      - condition: "has(context.s) && context.s.matches(\'^(a|aa)+$\')"\n'],
  ['a huge CEL expression', `policies:\n  - id: cel\n    actions: [cel.x]\n    when:\n      - condition: "${Array(3000).fill('1 < 2').join(' && ')}"\n`],
  ['deep CEL parentheses', `policies:\n  - id: cel\n    actions: [cel.x]\n    when:\n      - condition: "${'('.repeat(5000)}true${')'.repeat(5000)}"\n`],
  ['a huge list file', Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`).join('\n')],
  ['odd list lines', '::ffff:1.2.3.4\n2002:c000:20a::/48\n999.1.1.1\n1.2.3.4/33\n::/0\n0.0.0.0/0\n# comment\n\n   \nfe80::1%eth0\n']
]

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constantFrom('delete' as const, 'duplicate' as const, 'indent' as const, 'dedent' as const), file, line: nat }),
  fc.record({ op: fc.constant('swap' as const), file, line: nat, other: nat }),
  fc.record({ op: fc.constant('insert' as const), file, at: nat, text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })) }),
  fc.record({ op: fc.constant('truncate' as const), file, at: nat }),
  fc.record({ op: fc.constant('value' as const), file, line: nat, value: scalar }),
  fc.record({ op: fc.constant('replace' as const), file, which: fc.nat(WHOLE.length - 1) }).map(({ op, file, which }) => ({ op, file, content: WHOLE[which]![1], label: WHOLE[which]![0] })),
  fc.record({ which: fc.nat(WHOLE.length - 1), name: fc.constantFrom('extra.yaml', 'deep/er/extra.yml', 'lists/extra.txt', 'z.yaml') })
    .map(({ which, name }) => ({ op: 'add' as const, name, content: WHOLE[which]![1], label: WHOLE[which]![0] }))
)

export interface FolderCase { mutations: Mutation[] }

export const folderCase: fc.Arbitrary<FolderCase> = fc.record({ mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }) })

const describe = (m: Mutation): string => {
  switch (m.op) {
    case 'replace': return `${NAMES[m.file]} replaced by ${m.label}`
    case 'add': return `${m.name} added: ${m.label}`
    case 'insert': return `${NAMES[m.file]}: ${JSON.stringify(m.text)} inserted at ${m.at}`
    case 'value': return `${NAMES[m.file]}: value on line ${m.line} = ${JSON.stringify(m.value).slice(0, 40)}`
    case 'swap': return `${NAMES[m.file]}: lines ${m.line} and ${m.other} swapped`
    case 'truncate': return `${NAMES[m.file]}: truncated at ${m.at}`
    default: return `${NAMES[m.file]}: line ${m.line} ${m.op}d`
  }
}

export const describeCase = (c: FolderCase): string => c.mutations.map(describe).join('; ')

function apply (files: Map<string, string>, m: Mutation): void {
  if (m.op === 'add') { files.set(m.name, m.content); return }
  const name = NAMES[m.file]!
  const text = files.get(name) ?? ''
  const lines = text.split('\n')
  const i = (n: number): number => n % Math.max(1, lines.length)
  switch (m.op) {
    case 'delete': lines.splice(i(m.line), 1); break
    case 'duplicate': lines.splice(i(m.line), 0, lines[i(m.line)] ?? ''); break
    case 'indent': lines[i(m.line)] = '  ' + (lines[i(m.line)] ?? ''); break
    case 'dedent': lines[i(m.line)] = (lines[i(m.line)] ?? '').replace(/^ {1,2}/, ''); break
    case 'swap': { const a = i(m.line); const b = i(m.other); [lines[a], lines[b]] = [lines[b]!, lines[a]!]; break }
    case 'value': { const n = i(m.line); lines[n] = (lines[n] ?? '').replace(/(:\s*)(\S.*)?$/, `$1${m.value}`); break }
    case 'insert': { const at = m.at % (text.length + 1); files.set(name, text.slice(0, at) + m.text + text.slice(at)); return }
    case 'truncate': files.set(name, text.slice(0, m.at % (text.length + 1))); return
    case 'replace': files.set(name, m.content); return
  }
  files.set(name, lines.join('\n'))
}

/** Writes the mutated folder under `root`; returns its path. */
export function writeCase (root: string, c: FolderCase): string {
  const files = new Map(EXAMPLES)
  for (const m of c.mutations) apply(files, m)
  const dir = mkdtempSync(join(root, 'case-'))
  for (const [name, text] of files) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    // latin1 keeps "binary" contents byte for byte; everything else is written as UTF-8.
    writeFileSync(join(dir, name), text, [...text].some(ch => ch.charCodeAt(0) > 0xff) ? 'utf8' : 'latin1')
  }
  return dir
}

export interface FolderFuzzReport {
  seed: number
  folders: number
  loaded: number
  refused: number
  maxMs: number
  maxLabel: string
  violations: Violation[]
  seconds: number
}

/** Checks one load: success, or a PolicyLoadError whose problems all have a file and a line. */
export async function checkLoad (dir: string, label: string, violations: Violation[]): Promise<{ ok: boolean, ms: number }> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), LOAD_LIMIT_MS) })
  try {
    const result = await Promise.race([loadPolicySet(dir).then(() => 'loaded' as const), limit])
    if (result === 'timeout') violations.push({ property: `a load ends within ${LOAD_LIMIT_MS} ms`, label, detail: 'still loading' })
    return { ok: result === 'loaded', ms: performance.now() - started }
  } catch (err) {
    const ms = performance.now() - started
    if (!(err instanceof PolicyLoadError)) {
      violations.push({ property: 'a bad folder gives a PolicyLoadError', label, detail: `${(err as Error)?.name}: ${String((err as Error)?.message ?? err).slice(0, 200)}` })
      return { ok: false, ms }
    }
    if (err.problems.length === 0) violations.push({ property: 'a PolicyLoadError names file:line', label, detail: 'no problems listed' })
    for (const p of err.problems) {
      if (typeof p.file !== 'string' || p.file === '' || !Number.isInteger(p.line) || p.line < 1 || !err.message.includes(`${p.file}:${p.line}`)) {
        violations.push({ property: 'a PolicyLoadError names file:line', label, detail: JSON.stringify(p).slice(0, 200) })
        break
      }
    }
    return { ok: false, ms }
  } finally {
    clearTimeout(timer)
  }
}

export async function fuzzFolders (options: { seed: number, runs: number, deadline?: number }): Promise<FolderFuzzReport> {
  const started = performance.now()
  const root = mkdtempSync(join(tmpdir(), 'stepup-fuzz-folders-'))
  const violations: Violation[] = []
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  let folders = 0
  let loaded = 0
  let maxMs = 0
  let maxLabel = ''
  try {
    for (let batch = 0; folders < options.runs; batch++) {
      if (options.deadline !== undefined && Date.now() > options.deadline) break
      for (const c of fc.sample(folderCase, { seed: options.seed + batch, numRuns: Math.min(50, options.runs - folders) })) {
        const label = describeCase(c)
        const dir = writeCase(root, c)
        const { ok, ms } = await checkLoad(dir, label, violations)
        rmSync(dir, { recursive: true, force: true })
        folders++
        if (ok) loaded++
        if (ms > maxMs) { maxMs = ms; maxLabel = label }
      }
    }
    await new Promise(resolve => setTimeout(resolve, 50))
    for (const err of unhandled) violations.push({ property: 'no unhandled rejection', label: '', detail: String((err as Error)?.stack ?? err).slice(0, 500) })
  } finally {
    process.off('unhandledRejection', onUnhandled)
    rmSync(root, { recursive: true, force: true })
  }
  return { seed: options.seed, folders, loaded, refused: folders - loaded, maxMs, maxLabel, violations, seconds: (performance.now() - started) / 1000 }
}

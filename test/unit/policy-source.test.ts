// Reading and parsing policy files: positions from js-yaml's events agree with `yaml`'s, the
// size limits name the file, special files are skipped, hidden entries are ignored.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml'
import { parseSource, readPolicyFolder, type Path } from '../../src/policy/source.js'

/** Every path of a document with the position `yaml` gives its value and, for map entries, its key. */
function yamlPositions (text: string): Array<{ path: Path, value: { line: number, col: number }, key?: { line: number, col: number } }> {
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc })
  const out: ReturnType<typeof yamlPositions> = []
  const pos = (offset: number): { line: number, col: number } => { const p = lc.linePos(offset); return { line: p.line, col: p.col } }
  const walk = (node: Node | null, path: Path): void => {
    if (node === null) return
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : ''
        const value = pair.value as Node | null
        if (value?.range) out.push({ path: [...path, key], value: pos(value.range[0]), key: pos((pair.key as Node).range![0]) })
        walk(value, [...path, key])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const n = item as Node
        if (n.range) out.push({ path: [...path, i], value: pos(n.range[0]) })
        walk(n, [...path, i])
      })
    }
  }
  walk(doc.contents as Node, [])
  return out
}

t.test('positions of every field of the example policies agree with yaml', async t => {
  const files = (await readdir('policies')).filter(f => f.endsWith('.yaml'))
  let compared = 0
  for (const file of files) {
    const text = await readFile(join('policies', file), 'utf8')
    const parsed = parseSource({ file, text }, [])
    t.ok(parsed, file)
    for (const expected of yamlPositions(text)) {
      t.same(parsed!.locate(expected.path), expected.value, `${file} ${expected.path.join('.')}`)
      if (expected.key) t.same(parsed!.locate(expected.path, true), expected.key, `${file} ${expected.path.join('.')} (key)`)
      compared++
    }
  }
  t.ok(compared > 100, `${compared} positions compared`)
})

t.test('flow style, quoted keys, anchors, aliases, tags and block scalars agree with yaml too; a missing path gives the deepest node', async t => {
  const text = 'policies:\n  - { id: a, "actions": [x, y] }\n  - &p\n    id: b\n    actions: [z]\n  - *p\n  - &q [1, 2]\n  - !!str tagged\n  - description: |\n      block\n    message: >-\n      folded\n'
  const parsed = parseSource({ file: 'f.yaml', text }, [])!
  for (const expected of yamlPositions(text)) {
    t.same(parsed.locate(expected.path), expected.value, expected.path.join('.'))
    if (expected.key) t.same(parsed.locate(expected.path, true), expected.key, `${expected.path.join('.')} (key)`)
  }
  t.same(parsed.locate(['policies', 1, 'nope']), { line: 4, col: 5 }, 'the deepest node that exists')
})

t.test('YAML problems: syntax, duplicate keys, several documents', async t => {
  const problems: Parameters<typeof parseSource>[1] = []
  t.equal(parseSource({ file: 'a.yaml', text: 'policies:\n  - id: a\n    id: b\n' }, problems), undefined)
  t.equal(parseSource({ file: 'b.yaml', text: 'policies: []\n---\npolicies: []\n' }, problems), undefined)
  t.match(problems, [{ file: 'a.yaml', line: 3, field: '(yaml)' }, { file: 'b.yaml', field: '(yaml)', message: 'a policy file holds one YAML document' }])
})

t.test('a file nested deeper than any parser recursion is refused, saying so, and never brings the process down', async t => {
  // Deep files used to reach the `yaml` library (for its clearer message), whose recursion
  // overflowed: "Maximum call stack size exceeded", and after a few files V8 aborted the process.
  // Each file is parsed many times: the abort came after a few parses, at 5,000 levels.
  const deep: Array<[string, string, RegExp]> = [
    ['flow', `policies: ${'['.repeat(5_000)}${']'.repeat(5_000)}\n`, /nesting exceeded/],
    ['flow, 100 deep', `policies: ${'['.repeat(100)}${']'.repeat(100)}\n`, /nesting exceeded/],
    ['block sequences', `policies:\n${'- '.repeat(5_000)}x\n`, /nesting exceeded/],
    ['a syntax error, then a deep part', `policies: [a\nb: c\nd: ${'{'.repeat(5_000)}\n`, /./]
  ]
  for (const [name, text, message] of deep) {
    for (let i = 0; i < 30; i++) {
      const problems: Parameters<typeof parseSource>[1] = []
      t.equal(parseSource({ file: 'deep.yaml', text }, problems), undefined)
      t.match(problems, [{ file: 'deep.yaml', field: '(yaml)', code: 'yaml_syntax', message }], name)
      t.notMatch(problems[0]?.message, /call stack/, name)
    }
  }
})

t.test('reading a folder: limits name the file, special files are skipped, hidden entries ignored, links followed', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-source-'))
  writeFileSync(join(dir, 'a.yaml'), 'policies: []\n')
  writeFileSync(join(dir, 'big.yaml'), 'policies: []\n' + '#'.repeat(2000) + '\n')
  mkdirSync(join(dir, '.hidden'))
  writeFileSync(join(dir, '.hidden', 'h.yaml'), 'policies: []\n')
  writeFileSync(join(dir, 'x.test.yaml'), 'cases: []\n')
  execFileSync('mkfifo', [join(dir, 'fifo.yaml')])
  mkdirSync(join(dir, 'real'))
  writeFileSync(join(dir, 'real', 'target.yml'), 'policies: []\n')
  symlinkSync(join(dir, 'real', 'target.yml'), join(dir, 'link.yaml'))
  const read = await readPolicyFolder(dir, { maxFileBytes: 1000, maxFolderBytes: 1_000_000, maxFiles: 100 })
  t.same(read.policies.map(p => p.file), ['a.yaml', 'link.yaml', 'real/target.yml'])
  t.match(read.problems, [
    { file: 'big.yaml', severity: 'error', message: /2014 bytes: larger than the limit of 1000 bytes per file/ },
    { file: 'fifo.yaml', severity: 'warning', message: 'skipped: a FIFO, not a regular file' }
  ])
  const folder = await readPolicyFolder(dir, { maxFileBytes: 10_000, maxFolderBytes: 100, maxFiles: 100 })
  t.match(folder.problems?.filter(p => p.severity === 'error'), [{ file: 'big.yaml', field: '(folder)', message: /passes the limit of 100 bytes/ }])
  const many = await readPolicyFolder(dir, { maxFileBytes: 10_000, maxFolderBytes: 1_000_000, maxFiles: 2 })
  t.match(many.problems?.filter(p => p.severity === 'error'), [{ field: '(folder)', message: 'more than 2 policy and list files: refused' }])
})

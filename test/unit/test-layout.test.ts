// Every test file runs under `npm test`: tap's own list (package.json's include globs) or, for
// the folders run one process each, test/groups/<folder>.test.ts. A new folder or a file in a
// subfolder nobody includes would otherwise never run, and nothing would say so.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'

const ROOT = join(import.meta.dirname, '../..')
const TEST = join(ROOT, 'test')

const all = (readdirSync(TEST, { recursive: true }) as string[])
  .map(f => f.split('\\').join('/'))
  .filter(f => f.endsWith('.test.ts') && !f.startsWith('fixtures/'))
  .map(f => `test/${f}`)
  .sort()

// `tap list`, outside tap's own environment (a child of a test file would otherwise be told so).
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP') && !k.startsWith('_TAPJS') && k !== 'NODE_OPTIONS'))
const listed = spawnSync(join(ROOT, 'node_modules/.bin/tap'), ['list'], { cwd: ROOT, env, encoding: 'utf8' })
const run = new Set(listed.stdout.split('\n').filter(l => l !== ''))
const grouped = new Set(readdirSync(join(TEST, 'groups')).filter(f => f.endsWith('.test.ts')).map(f => `test/${f.slice(0, -'.test.ts'.length)}`))

t.test('every test file runs under npm test, once', async t => {
  t.equal(listed.status, 0, listed.stderr)
  t.ok(run.size >= 20 && grouped.size >= 5, `tap lists ${run.size} files; ${grouped.size} folders are grouped`)
  for (const file of all) {
    const inGroup = grouped.has(dirname(file))
    t.ok(run.has(file) !== inGroup, `${file}: ${inGroup ? 'in a grouped folder' : 'listed by tap'}${run.has(file) && inGroup ? ', and listed by tap as well: it would run twice' : ''}`)
  }
})

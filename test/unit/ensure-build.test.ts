// `npm start` compiles only when a source is newer than the last build (scripts/ensure-build.mjs),
// tried on a one-file project so the test stays quick.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const SCRIPT = fileURLToPath(new URL('../../scripts/ensure-build.mjs', import.meta.url))

t.test('builds when dist/ is missing or older than a source, and only then', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-ensure-build-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'src'))
  // lib es5 alone (no DOM): each of the five compiles below reads a few hundred KB of
  // declarations instead of several MB.
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'ES2022', lib: ['es5'], module: 'NodeNext', moduleResolution: 'NodeNext', types: [], skipLibCheck: true } }))
  writeFileSync(join(dir, 'tsconfig.build.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { rootDir: 'src', outDir: 'dist' }, include: ['src'] }))
  writeFileSync(join(dir, 'src', 'server.ts'), 'export const answer: number = 42\n')
  const run = () => spawnSync(process.execPath, [SCRIPT], { cwd: dir, encoding: 'utf8' })

  const first = run()
  t.equal(first.status, 0, first.stderr)
  t.match(first.stderr, /building dist\/ \(first start\)/)
  t.match(readFileSync(join(dir, 'dist', 'server.js'), 'utf8'), /answer = 42/)
  const builtAt = statSync(join(dir, 'dist', 'server.js')).mtimeMs

  const again = run()
  t.equal(again.status, 0)
  t.equal(again.stderr, '', 'nothing changed: no compile, no message')
  t.equal(statSync(join(dir, 'dist', 'server.js')).mtimeMs, builtAt, 'dist/ untouched')

  writeFileSync(join(dir, 'src', 'server.ts'), 'export const answer: number = 43\n')
  const future = new Date(Date.now() + 5000)
  utimesSync(join(dir, 'src', 'server.ts'), future, future)
  const edited = run()
  t.match(edited.stderr, /sources changed since the last build/)
  t.match(readFileSync(join(dir, 'dist', 'server.js'), 'utf8'), /answer = 43/, 'the edit is compiled')

  rmSync(join(dir, 'dist', 'server.js'))
  const cleaned = run()
  t.equal(cleaned.status, 0, cleaned.stderr)
  t.match(readFileSync(join(dir, 'dist', 'server.js'), 'utf8'), /answer = 43/, 'a hand-cleaned dist/ is rebuilt, not trusted to the incremental state')

  writeFileSync(join(dir, 'src', 'server.ts'), 'export const answer: number = "no"\n')
  const later = new Date(Date.now() + 10_000)
  utimesSync(join(dir, 'src', 'server.ts'), later, later)
  const broken = run()
  t.not(broken.status, 0, 'a type error stops the start')
  t.not(run().status, 0, 'and is not forgotten by the next start')
})

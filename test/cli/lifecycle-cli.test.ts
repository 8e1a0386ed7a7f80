// The lifecycle commands and behaviours of the CLI and the server start: --version,
// per-command help, check on one file and with --json, special files, conditions that always
// fail, diff, replay usage (in-process through run(argv, io), the function src/cli/main.ts
// calls), and, as real processes, clean messages for a busy port or a missing folder.
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import t from 'tap'
import { run } from '../../src/cli/run.js'
import { TS_CHILD_ARGS } from '../helpers/child.js'

const root = resolve(import.meta.dirname, '../..')
process.chdir(root)
const env = { ...process.env }
delete env.GEOIP_CITY_DB

interface Run { code: number | null, stdout: string, stderr: string }
const node = (args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> => new Promise((resolvePromise, reject) => {
  const child = spawn(process.execPath, [...TS_CHILD_ARGS, ...args], { cwd: root, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  child.on('error', reject)
  child.on('close', code => { clearTimeout(timer); resolvePromise({ code, stdout, stderr }) })
})
/** `stepup <args>` in-process; stdout and stderr as the process writes them. */
async function stepup (...args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await run(args, { out: line => { stdout += line + '\n' }, err: line => { stderr += line + '\n' } })
  return { code, stdout, stderr }
}

const dir = (files: Record<string, string>): string => {
  const d = mkdtempSync(join(tmpdir(), 'stepup-cli-'))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true })
    writeFileSync(join(d, name), text)
  }
  return d
}
const GUARD = 'policies:\n  - id: guard\n    actions: [payments.payout]\n    require: { aal: 3, maxAge: 5m }\n'

t.test('--version, and help for every command without "--"', async t => {
  const [version, checkHelp, replayHelp, diffHelp, helpDiff] = await Promise.all([
    stepup('--version'), stepup('check', '--help'), stepup('replay', '--help'), stepup('diff', '-h'), stepup('help', 'diff')
  ])
  t.equal(version.code, 0)
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/)
  t.match(checkHelp.stdout, /^Usage: stepup check \[dir \| file\.yaml\] \[--json\]/)
  t.match(replayHelp.stdout, /^Usage: stepup replay --policies <dir> --from/)
  t.match(replayHelp.stdout, /--fail-on weaker/)
  t.match(diffHelp.stdout, /^Usage: stepup diff <old dir> <new dir>/)
  t.equal(helpDiff.stdout, diffHelp.stdout)
  for (const r of [checkHelp, replayHelp, diffHelp]) t.equal(r.code, 0)
})

t.test('check on a single file (with the lists beside it), and --json', async t => {
  const d = dir({ 'a.yaml': GUARD, 'b.yaml': 'policies:\n  - id: other\n    actions: [x]\n    require: { aal: 9 }\n', 'lists/blocked.txt': '203.0.113.0/24\n' })
  const one = await stepup('check', join(d, 'a.yaml'))
  t.equal(one.code, 0, one.stderr)
  t.match(one.stdout, /a\.yaml: ok \(1 policy in 1 file, 1 list; 0 warnings\)/)
  const json = await stepup('check', '--json', d)
  t.equal(json.code, 1)
  const report = JSON.parse(json.stdout)
  t.match(report, { ok: false, revision: null, errors: [{ file: join(d, 'b.yaml'), line: 4, field: 'policies[0].require.aal' }], warnings: [] })
  const ok = JSON.parse((await stepup('check', '--json', join(d, 'a.yaml'))).stdout)
  t.match(ok, { ok: true, revision: /^sha256:[0-9a-f]{16}$/, policies: 1, files: 1, lists: 1, errors: [] })
})

t.test('a FIFO in the folder is skipped with a warning instead of blocking the load', async t => {
  const d = dir({ 'a.yaml': GUARD })
  execFileSync('mkfifo', [join(d, 'pipe.yaml')])
  const r = await stepup('check', d)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /pipe\.yaml:1:1 \(file\): warning: skipped: a FIFO, not a regular file/)
})

t.test('a condition that errors for every input is refused with its file:line:col', async t => {
  const d = dir({
    'p.yaml': 'policies:\n  - id: hwk\n    actions: [x]\n    when:\n      - condition: claims.amr.contains("hwk")\n  - id: age\n    actions: [y]\n    when:\n      - condition: claims.auth_time > "2024"\n  - id: fine\n    actions: [z]\n    when:\n      - condition: context.amount > 100 || "hwk" in claims.amr\n'
  })
  const r = await stepup('check', d)
  t.equal(r.code, 1)
  t.match(r.stdout, /p\.yaml:5:20 policies\[0\]\.when\[0\]\.condition: error: fails for every input.*list\.contains/)
  t.match(r.stdout, /p\.yaml:9:20 policies\[1\]\.when\[0\]\.condition: error: fails for every input/)
  t.notMatch(r.stdout, /policies\[2\][^\n]*: error:/, 'a condition that works for some input passes')
})

t.test('diff prints one line per change with file:line, and JSON', async t => {
  const a = dir({ 'p.yaml': GUARD })
  const b = dir({ 'p.yaml': GUARD.replace('aal: 3', 'aal: 2') + '  - id: new\n    actions: [x]\n' })
  const text = await stepup('diff', a, b)
  t.equal(text.code, 0, text.stderr)
  t.match(text.stdout, new RegExp(`loosened +${join(b, 'p.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2 guard: aal 3 -> 2`))
  t.match(text.stdout, /added +.*p\.yaml:5 new: /)
  t.match(text.stdout, /1 added, 0 removed, 1 loosened, 0 tightened, 0 changed/)
  const json = JSON.parse((await stepup('diff', '--json', a, b)).stdout)
  t.match(json, { changes: [{ kind: 'loosened', id: 'guard', line: 2, what: 'aal 3 -> 2' }, { kind: 'added', id: 'new' }] })
  const usage = await stepup('diff', a)
  t.equal(usage.code, 2)
  t.match(usage.stderr, /two policy folders are required/)
})

t.test('replay: usage errors are clean', async t => {
  const [noFrom, badFail, missing] = await Promise.all([
    stepup('replay', '--policies', 'policies'),
    stepup('replay', '--policies', 'policies', '--from', 'x.jsonl', '--fail-on', 'stronger'),
    stepup('replay', '--policies', 'policies', '--from', '/no/such/export.jsonl')
  ])
  t.equal(noFrom.code, 2)
  t.match(noFrom.stderr, /--from <file \| redis URL> is required/)
  t.equal(badFail.code, 2)
  t.match(badFail.stderr, /--fail-on: the only value is "weaker"/)
  t.equal(missing.code, 2)
  t.match(missing.stderr, /--from: cannot read \/no\/such\/export\.jsonl/)
  for (const r of [noFrom, badFail, missing]) t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
})

t.test('the server: a busy port and a missing folder end with one clean line', async t => {
  const busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => busy.close())
  const port = (busy.address() as { port: number }).port
  const [inUse, noFolder] = await Promise.all([
    node(['src/server.ts'], { PORT: String(port), POLICIES_DIR: 'policies', LOG_LEVEL: 'error' }),
    node(['src/server.ts'], { PORT: '0', POLICIES_DIR: '/no/such/policies', LOG_LEVEL: 'error' })
  ])
  t.equal(inUse.code, 1)
  t.match(inUse.stderr, new RegExp(`stepup-pdp: PORT=${port}: the address 127\\.0\\.0\\.1:${port} is already in use`))
  t.notMatch(inUse.stderr, /\n\s+at /, 'no stack trace')
  t.equal(noFolder.code, 1)
  t.match(noFolder.stderr, /^stepup-pdp: POLICIES_DIR[=:].*\/no\/such\/policies/)
  t.notMatch(noFolder.stderr, /\n\s+at /, 'no stack trace')
})

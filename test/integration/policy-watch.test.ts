// Watching the policy folder: every kind of edit is seen, ten times in a row, with chokidar
// alone (the periodic re-stat is off here), on the Node version that runs the tests.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { pino } from 'pino'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import { createPolicyReloader, type ReloadResult } from '../../src/policy/reloader.js'
import type { PolicyAuditRecord } from '../../src/audit/audit-log.js'

const policy = (id: string, minutes: number, aal = 2): string =>
  `policies:\n  - id: ${id}\n    actions: [payments.payout]\n    require: { aal: ${aal}, maxAge: ${minutes}m }\n`

const maxAgeOf = (holder: PolicyHolder, id: string): number | undefined => holder.current.policies.find(p => p.id === id)?.require.maxAge

async function waitFor (what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (check()) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`not seen within ${ms} ms: ${what}`)
}

async function watched (t: Test, dir: string, options: { allowRemovals?: boolean } = {}) {
  if (options.allowRemovals) writeFileSync(join(dir, '.allow-removals'), '')
  const holder = new PolicyHolder((await loadPolicySet(dir)).set)
  const results: ReloadResult[] = []
  const events: PolicyAuditRecord[] = []
  const reloader = createPolicyReloader({
    dir, holder, logger: pino({ level: 'silent' }), debounceMs: 30, pollMs: 0, worker: false,
    onResult: r => results.push(r), onEvent: e => events.push(e)
  })
  reloader.watch()
  // chokidar is ready once its first scan is done; give it that time.
  await new Promise(resolve => setTimeout(resolve, 300))
  t.teardown(() => reloader.close())
  return { holder, results, events, reloader }
}

const folder = (): string => mkdtempSync(join(tmpdir(), 'stepup-watch-'))

t.test('in-place writes: ten in a row, each seen', async t => {
  const dir = folder()
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  const { holder } = await watched(t, dir)
  for (let i = 2; i <= 11; i++) {
    writeFileSync(join(dir, 'p.yaml'), policy('guard', i))
    await waitFor(`write ${i}`, () => maxAgeOf(holder, 'guard') === i * 60)
  }
  t.equal(maxAgeOf(holder, 'guard'), 660)
})

t.test('rename-over (an editor\'s atomic save): ten in a row', async t => {
  const dir = folder()
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  const { holder } = await watched(t, dir)
  for (let i = 2; i <= 11; i++) {
    writeFileSync(join(dir, `.p.yaml.${i}.swp`), policy('guard', i))
    renameSync(join(dir, `.p.yaml.${i}.swp`), join(dir, 'p.yaml'))
    await waitFor(`rename-over ${i}`, () => maxAgeOf(holder, 'guard') === i * 60)
  }
  t.equal(maxAgeOf(holder, 'guard'), 660)
})

t.test('sed -i: ten in a row', async t => {
  const dir = folder()
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  const { holder } = await watched(t, dir)
  for (let i = 2; i <= 11; i++) {
    execFileSync('sed', ['-i', `s/maxAge: ${i - 1}m/maxAge: ${i}m/`, join(dir, 'p.yaml')])
    await waitFor(`sed -i ${i}`, () => maxAgeOf(holder, 'guard') === i * 60)
  }
  t.equal(maxAgeOf(holder, 'guard'), 660)
})

t.test('git checkout between two commits: ten in a row', async t => {
  const dir = folder()
  const git = (...args: string[]): void => { execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: dir, stdio: 'ignore' }) }
  git('init', '-q', '-b', 'one')
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  git('add', '.'); git('commit', '-qm', 'one')
  git('checkout', '-qb', 'two')
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 2))
  git('commit', '-qam', 'two')
  const { holder } = await watched(t, dir)
  for (let i = 1; i <= 10; i++) {
    const branch = i % 2 === 1 ? 'one' : 'two'
    git('checkout', '-q', branch)
    await waitFor(`checkout ${i} (${branch})`, () => maxAgeOf(holder, 'guard') === (branch === 'one' ? 60 : 120))
  }
  t.pass('every checkout seen')
})

t.test('new files: ten in a row', async t => {
  const dir = folder()
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  const { holder, events } = await watched(t, dir)
  for (let i = 1; i <= 10; i++) {
    writeFileSync(join(dir, `new-${i}.yaml`), policy(`new-${i}`, i))
    await waitFor(`create ${i}`, () => maxAgeOf(holder, `new-${i}`) === i * 60)
  }
  t.equal(holder.current.policies.length, 11)
  t.ok(events.some(e => e.event === 'policy.reloaded' && e.added.includes('new-10')))
})

t.test('deleted files (removals confirmed by .allow-removals): ten in a row', async t => {
  const dir = folder()
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  for (let i = 1; i <= 10; i++) writeFileSync(join(dir, `old-${i}.yaml`), policy(`old-${i}`, i))
  const { holder, events } = await watched(t, dir, { allowRemovals: true })
  for (let i = 1; i <= 10; i++) {
    unlinkSync(join(dir, `old-${i}.yaml`))
    await waitFor(`delete ${i}`, () => maxAgeOf(holder, `old-${i}`) === undefined)
  }
  t.equal(holder.current.policies.length, 1)
  t.ok(events.some(e => e.event === 'policy.reloaded' && e.removed.includes('old-10')))
})

t.test('moves into and out of sub-folders: ten in a row', async t => {
  const dir = folder()
  mkdirSync(join(dir, 'sub'))
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  writeFileSync(join(dir, 'sub', 'parked.yml'), policy('moved', 1))
  const { holder } = await watched(t, dir)
  for (let i = 1; i <= 10; i++) {
    const [from, to] = i % 2 === 1 ? [join(dir, 'sub', 'parked.yml'), join(dir, 'here.yaml')] : [join(dir, 'here.yaml'), join(dir, 'sub', 'parked.yml')]
    renameSync(from, to)
    const expected = i % 2 === 1 ? 'here.yaml' : 'sub/parked.yml'
    await waitFor(`move ${i}`, () => holder.current.policies.find(p => p.id === 'moved')?.file === expected)
  }
  t.pass('every move seen')
})

t.test('a file created after the watch began: its edits are seen, ten in a row', async t => {
  const dir = folder()
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  const { holder } = await watched(t, dir)
  writeFileSync(join(dir, 'q.yaml'), policy('q', 1))
  await waitFor('q created', () => maxAgeOf(holder, 'q') === 60)
  for (let i = 2; i <= 11; i++) {
    writeFileSync(join(dir, 'q.yaml'), policy('q', i))
    await waitFor(`edit of the new file ${i}`, () => maxAgeOf(holder, 'q') === i * 60)
  }
  t.pass()
})

t.test('folder renames: ten in a row, and edits inside the renamed folder are seen', async t => {
  const dir = folder()
  mkdirSync(join(dir, 'team-0'))
  writeFileSync(join(dir, 'p.yaml'), policy('guard', 1))
  writeFileSync(join(dir, 'team-0', 't.yaml'), policy('team', 1))
  const { holder } = await watched(t, dir)
  for (let i = 1; i <= 10; i++) {
    renameSync(join(dir, `team-${i - 1}`), join(dir, `team-${i}`))
    await waitFor(`folder rename ${i}`, () => holder.current.policies.find(p => p.id === 'team')?.file === `team-${i}/t.yaml`)
    writeFileSync(join(dir, `team-${i}`, 't.yaml'), policy('team', i + 1))
    await waitFor(`edit inside the renamed folder ${i}`, () => maxAgeOf(holder, 'team') === (i + 1) * 60)
  }
  t.pass()
})

t.test('a Kubernetes ConfigMap volume: the ..data symlink swap, ten in a row', async t => {
  const dir = folder()
  // As the kubelet lays it out: ..<timestamp>/ holds the files, ..data points at it, and each
  // visible file is a link through ..data.
  const publish = (n: number): void => {
    const version = `..2026_12_02_${n}`
    mkdirSync(join(dir, version))
    writeFileSync(join(dir, version, 'p.yaml'), policy('guard', n))
    symlinkSync(version, join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
    if (n > 1) rmSync(join(dir, `..2026_12_02_${n - 1}`), { recursive: true })
  }
  publish(1)
  symlinkSync('..data/p.yaml', join(dir, 'p.yaml'))
  const { holder } = await watched(t, dir)
  for (let i = 2; i <= 11; i++) {
    publish(i)
    await waitFor(`ConfigMap swap ${i}`, () => maxAgeOf(holder, 'guard') === i * 60)
  }
  t.equal(maxAgeOf(holder, 'guard'), 660)
})

/**
 * `stepup test [dir | file.test.yaml] [--coverage] [--json]`: runs every `*.test.yaml` below `dir`
 * (or the one suite file given) with the suite runner the engine's
 * own case files use (src/testing/suite.ts). A suite's policies are, in order: `policiesDir`
 * (relative to the suite file), inline `policies:`, else the folder being tested — the folder
 * the server would load, so a suite in `tenants/` still sees the global policies and lists.
 * A single suite file is run with the folder it sits in as the folder being tested, unless
 * `--policies <dir>` names it; a single suite is not run against a folder without policies
 * (a suite in a subfolder would otherwise pass against nothing).
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join, normalize, relative, resolve, sep } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { PolicyLoadError } from '../errors.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { loadPolicySet } from '../policy/load.js'
import { openGeoLookup } from '../signals/geo.js'
import { DEFAULT_NOW, loadSuiteSet, runCase, type CaseResult, type Suite } from '../testing/suite.js'
import { formatProblemLine } from './check.js'
import { Coverage, type CoverageSummary } from './coverage.js'
import { EXIT, UsageError, type Io } from './io.js'

const SUITE = /\.test\.ya?ml$/

/** Suite files below `dir`, sorted; hidden folders and node_modules are skipped. */
export async function findSuites (dir: string): Promise<string[]> {
  const found: string[] = []
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true })
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
      const full = join(current, entry.name)
      if (entry.isDirectory()) await walk(full)
      else if (SUITE.test(entry.name)) found.push(full)
    }
  }
  await walk(dir)
  return found.sort((a, b) => a.localeCompare(b))
}

interface LoadedSet { set: CompiledPolicySet, label: string }

/** `stepup test --json`: one document with every suite and case, the totals and (with --coverage) the coverage. */
export interface TestReport {
  ok: boolean
  path: string
  suites: Array<{
    file: string
    name: string | null
    ok: boolean
    /** Why the suite could not run at all (unreadable, or its policies do not validate). */
    errors: string[]
    cases: Array<{ name: string, ok: boolean, failures: string[] }>
  }>
  totals: { suites: number, cases: number, passed: number, failed: number }
  coverage?: CoverageSummary[]
}

export async function testSuites (path: string, options: { coverage: boolean, json?: boolean, policies?: string | undefined }, io: Io): Promise<number> {
  let files: string[]
  let dir = path
  let single = false
  try {
    if ((await stat(path)).isDirectory()) {
      files = await findSuites(path)
    } else {
      if (!SUITE.test(path)) throw new UsageError(`${path} is not a test suite (*.test.yaml); give a suite file or a folder`)
      dir = dirname(path)
      files = [path]
      single = true
    }
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`)
  }
  if (options.policies !== undefined) {
    dir = options.policies
    const isFolder = await stat(dir).then(info => info.isDirectory(), () => false)
    if (!isFolder) throw new UsageError(`--policies: ${dir} is not a readable folder`)
  }
  const json = options.json === true
  const report: TestReport = { ok: false, path, suites: [], totals: { suites: files.length, cases: 0, passed: 0, failed: 0 } }
  const text = (line: string): void => { if (!json) io.out(line) }
  const finish = (passed: number, failed: number, coverage: Coverage | undefined): number => {
    report.totals = { suites: files.length, cases: passed + failed, passed, failed }
    report.ok = failed === 0 && files.length > 0
    if (json) {
      if (coverage) report.coverage = coverage.summary()
      io.out(JSON.stringify(report, null, 2))
    } else {
      if (coverage) for (const line of coverage.report()) io.out(line)
      io.out(`${passed} passed, ${failed} failed`)
    }
    return report.ok ? EXIT.ok : EXIT.failed
  }
  if (files.length === 0) {
    io.err(`stepup test: no test suites (*.test.yaml) under ${path}`)
    return finish(0, 0, undefined)
  }

  const geo = await openGeoLookup({})
  const folders = new Map<string, Promise<LoadedSet>>()
  const loadFolder = (folder: string): Promise<LoadedSet> => {
    const key = resolve(folder)
    let loaded = folders.get(key)
    if (!loaded) {
      loaded = loadPolicySet(folder).then(({ set }) => ({ set, label: normalize(folder) }))
      folders.set(key, loaded)
    }
    return loaded
  }
  const coverage = new Coverage()
  let passed = 0
  let failed = 0
  let current: TestReport['suites'][number] = { file: '', name: null, ok: true, errors: [], cases: [] }
  const fail = (name: string, lines: string[]): void => {
    failed++
    current.ok = false
    current.cases.push({ name, ok: false, failures: lines })
    text(`  FAIL  ${name}`)
    for (const line of lines) text(`          ${line}`)
  }

  try {
    for (const file of files) {
      const shown = displayPath(file)
      let suite: Suite
      current = { file: shown, name: null, ok: true, errors: [], cases: [] }
      report.suites.push(current)
      try {
        suite = parseYaml(await readFile(file, 'utf8')) as Suite
        if (suite === null || typeof suite !== 'object' || !Array.isArray(suite.cases)) throw new Error('cases: must be a list of cases')
      } catch (err) {
        const why = `cannot read the suite: ${(err as Error).message.split('\n')[0]}`
        text(shown)
        current.errors.push(why)
        fail('(suite)', [why])
        continue
      }
      if (typeof suite.name === 'string') current.name = suite.name
      text(suite.name !== undefined ? `${shown}: ${suite.name}` : shown)

      let loaded: LoadedSet
      try {
        if (suite.policiesDir !== undefined) loaded = await loadFolder(join(dirname(file), suite.policiesDir))
        else if (suite.policies !== undefined) loaded = { set: await loadSuiteSet(suite, shown), label: `${shown} (inline policies)` }
        else {
          loaded = await loadFolder(dir)
          if (single && options.policies === undefined && loaded.set.policies.length === 0) {
            throw new Error(`${normalize(dir)} holds no policies; name the folder being tested with --policies <dir>`)
          }
        }
      } catch (err) {
        // Every case of the suite fails, and the reason is shown once.
        const lines = err instanceof PolicyLoadError
          ? ['the policies do not validate:', ...err.problems.map(p => '  ' + formatProblemLine(p, p.file.includes('#') ? '' : policyDirOf(suite, file, dir)))]
          : [`cannot load the policies: ${(err as Error).message.split('\n')[0]}`]
        for (const line of lines) text(`  ${line}`)
        current.errors.push(...lines.map(line => line.trim()))
        for (const c of suite.cases) fail(typeof c?.name === 'string' ? c.name : '(unnamed case)', ['not run: the policies do not load'])
        continue
      }

      for (const c of suite.cases) {
        const name = typeof c?.name === 'string' ? c.name : '(unnamed case)'
        let result: CaseResult
        try {
          result = await runCase({ suite: suite.name ?? shown, case: c, set: loaded.set, now: suite.now ?? DEFAULT_NOW, geo })
        } catch (err) {
          fail(name, [`error: ${(err as Error).message.split('\n')[0]}`])
          continue
        }
        coverage.record(loaded.set, loaded.label, result.decisions)
        if (result.ok) {
          passed++
          current.cases.push({ name, ok: true, failures: [] })
          text(`  ok    ${name}`)
        } else {
          fail(name, result.failures)
        }
      }
    }
  } finally {
    geo.close()
  }

  return finish(passed, failed, options.coverage ? coverage : undefined)
}

function policyDirOf (suite: Suite, file: string, dir: string): string {
  return suite.policiesDir !== undefined ? join(dirname(file), suite.policiesDir) : dir
}

/** Paths below the working directory are shown relative to it; others as they are. */
function displayPath (file: string): string {
  const rel = relative(process.cwd(), file)
  return rel.startsWith('..') || rel === '' ? file : rel.split(sep).join('/')
}

/**
 * `stepup test [dir]`: runs every `*.test.yaml` below `dir` with the suite runner the engine's
 * own case files use (src/testing/suite.ts). A suite's policies are, in order: `policiesDir`
 * (relative to the suite file), inline `policies:`, else the folder being tested — the folder
 * the server would load, so a suite in `tenants/` still sees the global policies and lists.
 */
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, normalize, relative, resolve, sep } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { PolicyLoadError } from '../errors.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { loadPolicySet } from '../policy/load.js'
import { openGeoLookup } from '../signals/geo.js'
import { DEFAULT_NOW, loadSuiteSet, runCase, type CaseResult, type Suite } from '../testing/suite.js'
import { formatProblemLine } from './check.js'
import { Coverage } from './coverage.js'
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

export async function testSuites (dir: string, options: { coverage: boolean }, io: Io): Promise<number> {
  let files: string[]
  try {
    files = await findSuites(dir)
  } catch (err) {
    throw new UsageError(`cannot read ${dir}: ${(err as Error).message}`)
  }
  if (files.length === 0) {
    io.err(`stepup test: no test suites (*.test.yaml) under ${dir}`)
    io.out('0 passed, 0 failed')
    return EXIT.failed
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
  const fail = (name: string, lines: string[]): void => {
    failed++
    io.out(`  FAIL  ${name}`)
    for (const line of lines) io.out(`          ${line}`)
  }

  try {
    for (const file of files) {
      const shown = displayPath(file)
      let suite: Suite
      try {
        suite = parseYaml(await readFile(file, 'utf8')) as Suite
        if (suite === null || typeof suite !== 'object' || !Array.isArray(suite.cases)) throw new Error('cases: must be a list of cases')
      } catch (err) {
        io.out(shown)
        fail('(suite)', [`cannot read the suite: ${(err as Error).message.split('\n')[0]}`])
        continue
      }
      io.out(suite.name !== undefined ? `${shown}: ${suite.name}` : shown)

      let loaded: LoadedSet
      try {
        if (suite.policiesDir !== undefined) loaded = await loadFolder(join(dirname(file), suite.policiesDir))
        else if (suite.policies !== undefined) loaded = { set: await loadSuiteSet(suite, shown), label: `${shown} (inline policies)` }
        else loaded = await loadFolder(dir)
      } catch (err) {
        // Every case of the suite fails, and the reason is shown once.
        const lines = err instanceof PolicyLoadError
          ? ['the policies do not validate:', ...err.problems.map(p => '  ' + formatProblemLine(p, p.file.includes('#') ? '' : policyDirOf(suite, file, dir)))]
          : [`cannot load the policies: ${(err as Error).message.split('\n')[0]}`]
        for (const line of lines) io.out(`  ${line}`)
        for (const c of suite.cases) fail(typeof c?.name === 'string' ? c.name : '(unnamed case)', ['not run: the policies do not load'])
        continue
      }

      for (const c of suite.cases) {
        const name = typeof c?.name === 'string' ? c.name : '(unnamed case)'
        let result: CaseResult
        try {
          result = await runCase(suite.name ?? shown, c, loaded.set, suite.now ?? DEFAULT_NOW, geo)
        } catch (err) {
          fail(name, [`error: ${(err as Error).message.split('\n')[0]}`])
          continue
        }
        coverage.record(loaded.set, loaded.label, result.decisions)
        if (result.ok) {
          passed++
          io.out(`  ok    ${name}`)
        } else {
          fail(name, result.failures)
        }
      }
    }
  } finally {
    geo.close()
  }

  if (options.coverage) for (const line of coverage.report()) io.out(line)
  io.out(`${passed} passed, ${failed} failed`)
  return failed > 0 ? EXIT.failed : EXIT.ok
}

function policyDirOf (suite: Suite, file: string, dir: string): string {
  return suite.policiesDir !== undefined ? join(dirname(file), suite.policiesDir) : dir
}

/** Paths below the working directory are shown relative to it; others as they are. */
function displayPath (file: string): string {
  const rel = relative(process.cwd(), file)
  return rel.startsWith('..') || rel === '' ? file : rel.split(sep).join('/')
}

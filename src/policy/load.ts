/**
 * Loading a policy folder into a compiled set, and holding the set that serves. A set that
 * does not validate never replaces a good one.
 */
import { PolicyLoadError, sortProblems, type PolicyProblem } from '../errors.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { compilePolicies } from './compile.js'
import { checkConditions } from './condition-check.js'
import { DEFAULT_READ_LIMITS, readPolicyFolder, type FolderSources, type ReadLimits } from './source.js'

export interface LoadedPolicies {
  set: CompiledPolicySet
  warnings: PolicyProblem[]
}

export interface CheckedFolder {
  sources: FolderSources
  /** Undefined when any problem is an error. */
  set: CompiledPolicySet | undefined
  problems: PolicyProblem[]
}

/**
 * Everything a load checks, in order: read (size limits, special files), parse, validate,
 * compile, lint, then the conditions against generated requests. The same for the server's
 * loading worker, `stepup check` and the tests.
 */
export async function checkFolder (dir: string, limits: ReadLimits = DEFAULT_READ_LIMITS): Promise<CheckedFolder> {
  let sources: FolderSources
  try {
    sources = await readPolicyFolder(dir, limits)
  } catch (err) {
    throw new PolicyLoadError([{ file: dir, line: 1, col: 1, field: '(folder)', code: 'unreadable', message: `cannot read: ${(err as Error).message}`, severity: 'error' }])
  }
  const { set, problems } = checkSources(sources)
  return { sources, set, problems }
}

export function checkSources (sources: FolderSources): { set: CompiledPolicySet | undefined, problems: PolicyProblem[] } {
  const problems = [...(sources.problems ?? [])]
  const readFailed = problems.some(p => p.severity === 'error')
  const compiled = compilePolicies(sources)
  problems.push(...compiled.problems)
  let set = readFailed ? undefined : compiled.set
  if (set) {
    const conditions = checkConditions(set, sources.policies)
    if (conditions.length > 0) { problems.push(...conditions); set = undefined }
  }
  return { set, problems: sortProblems(problems) }
}

/** Reads and compiles `dir` on this thread; rejects with every problem of the folder when any is an error. */
export async function loadPolicySet (dir: string, limits?: ReadLimits): Promise<LoadedPolicies> {
  const { set, problems } = await checkFolder(dir, limits)
  const errors = problems.filter(p => p.severity === 'error')
  if (!set || errors.length > 0) throw new PolicyLoadError(errors)
  return { set, warnings: problems.filter(p => p.severity === 'warning') }
}

/** The set that serves, swapped atomically: a request reads `current` once and keeps it. */
export class PolicyHolder {
  private active: CompiledPolicySet
  private loadedAtMs: number
  private error: PolicyLoadError | undefined

  constructor (initial: CompiledPolicySet, private readonly now: () => number = Date.now) {
    this.active = initial
    this.loadedAtMs = now()
  }

  get current (): CompiledPolicySet { return this.active }
  get loadedAt (): Date { return new Date(this.loadedAtMs) }
  get lastError (): PolicyLoadError | undefined { return this.error }

  replace (next: CompiledPolicySet): void {
    this.active = next
    this.loadedAtMs = this.now()
    this.error = undefined
  }

  refuse (error: PolicyLoadError): void { this.error = error }

  /** The folder is valid again but unchanged: forget the last refusal. */
  clearError (): void { this.error = undefined }
}

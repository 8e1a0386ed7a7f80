/**
 * Loading a policy folder into a compiled set, and holding the set that serves. A set that
 * does not validate never replaces a good one.
 */
import { PolicyLoadError, type PolicyProblem } from '../errors.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { compilePolicies } from './compile.js'
import { readPolicyFolder } from './source.js'

export interface LoadedPolicies {
  set: CompiledPolicySet
  warnings: PolicyProblem[]
}

/** Reads and compiles `dir`; rejects with every problem of the folder when any is an error. */
export async function loadPolicySet (dir: string): Promise<LoadedPolicies> {
  let sources
  try {
    sources = await readPolicyFolder(dir)
  } catch (err) {
    throw new PolicyLoadError([{ file: dir, line: 1, col: 1, field: '(folder)', message: `cannot read: ${(err as Error).message}`, severity: 'error' }])
  }
  const { set, problems } = compilePolicies(sources)
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

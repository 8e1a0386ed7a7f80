/**
 * `stepup check [dir]`: validates a policy folder exactly as the server does (the same
 * readPolicyFolder + compilePolicies), then prints errors first, warnings after, one line each:
 *
 *   <dir>/<file>:<line>:<col> <field>: error: <problem>
 *   <dir>/<file>:<line>:<col> <field>: warning: <problem>
 *
 * Exit 1 when there is any error; warnings never fail.
 */
import { join, normalize } from 'node:path'
import { sortProblems, type PolicyProblem } from '../errors.js'
import { compilePolicies } from '../policy/compile.js'
import { readPolicyFolder } from '../policy/source.js'
import { EXIT, UsageError, type Io } from './io.js'

/** A problem as one line; `file` is shown below the folder as given, so editors can open it. */
export const formatProblemLine = (p: PolicyProblem, dir: string): string =>
  `${join(dir, p.file)}:${p.line}:${p.col} ${p.field}: ${p.severity}: ${p.message}`

/** Errors first, then warnings, each sorted by file and position. */
export const orderProblems = (problems: PolicyProblem[]): PolicyProblem[] => [
  ...sortProblems(problems.filter(p => p.severity === 'error')),
  ...sortProblems(problems.filter(p => p.severity === 'warning'))
]

export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`

export async function check (dir: string, io: Io): Promise<number> {
  let sources
  try {
    sources = await readPolicyFolder(dir)
  } catch (err) {
    throw new UsageError(`cannot read the policy folder ${dir}: ${(err as Error).message}`)
  }
  const { set, problems } = compilePolicies(sources)
  const ordered = orderProblems(problems)
  for (const p of ordered) io.out(formatProblemLine(p, dir))
  const errors = ordered.filter(p => p.severity === 'error').length
  const warnings = ordered.length - errors
  if (errors > 0 || !set) {
    io.out(`${normalize(dir)}: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}: the server would refuse this folder`)
    return EXIT.failed
  }
  io.out(`${normalize(dir)}: ok (${plural(set.policies.length, 'policy', 'policies')} in ${plural(sources.policies.length, 'file')}, ${plural(sources.lists.length, 'list')}; ${plural(warnings, 'warning')}) revision ${set.revision}`)
  return EXIT.ok
}

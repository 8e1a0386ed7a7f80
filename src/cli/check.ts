/**
 * `stepup check [dir | file]`: validates a policy folder exactly as the server does (the same
 * readPolicyFolder + checkSources: sizes, YAML, schema, compile, lint, conditions against
 * generated requests), then prints errors first, warnings after, one line each:
 *
 *   <dir>/<file>:<line>:<col> <field>: error: <problem>
 *   <dir>/<file>:<line>:<col> <field>: warning: <problem>
 *
 * Exit 1 when there is any error; warnings never fail. `--json` gives each problem's stable
 * `code` too (docs/policies.md#problem-codes).
 */
import { readFile, stat } from 'node:fs/promises'
import { basename, dirname, join, normalize } from 'node:path'
import { sortProblems, type LoadProblem, type PolicyProblem } from '../errors.js'
import { checkSources } from '../policy/load.js'
import { readPolicyFolder, type FolderSources } from '../policy/source.js'
import { EXIT, UsageError, type Io } from './io.js'

/** A problem as one line; `file` is shown below the folder as given, so editors can open it. */
export const formatProblemLine = (p: LoadProblem, dir: string): string =>
  `${join(dir, p.file)}:${p.line}:${p.col} ${p.field}: ${p.severity}: ${p.message}`

/** Errors first, then warnings, each sorted by file and position. */
export const orderProblems = (problems: PolicyProblem[]): PolicyProblem[] => [
  ...sortProblems(problems.filter(p => p.severity === 'error')),
  ...sortProblems(problems.filter(p => p.severity === 'warning'))
]

export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`

/** The sources of one policy file, with the lists/ folder beside it (if any). */
async function readOneFile (file: string): Promise<FolderSources> {
  const parent = dirname(file)
  let lists: FolderSources['lists'] = []
  let problems: PolicyProblem[] = []
  try {
    const folder = await readPolicyFolder(parent)
    lists = folder.lists
    problems = (folder.problems ?? []).filter(p => p.file.startsWith('lists/'))
  } catch { /* no readable folder around it: the file alone */ }
  return { policies: [{ file: basename(file), text: await readFile(file, 'utf8') }], lists, problems }
}

export async function check (path: string, io: Io, options: { json?: boolean } = {}): Promise<number> {
  let sources: FolderSources
  let dir = path
  try {
    const info = await stat(path)
    if (info.isDirectory()) {
      sources = await readPolicyFolder(path)
    } else {
      dir = dirname(path)
      sources = await readOneFile(path)
    }
  } catch (err) {
    throw new UsageError(`cannot read the policy folder ${path}: ${(err as Error).message}`)
  }
  const { set, problems } = checkSources(sources)
  const ordered = orderProblems(problems)
  const errors = ordered.filter(p => p.severity === 'error')
  const warnings = ordered.filter(p => p.severity === 'warning')
  if (options.json) {
    const line = (p: PolicyProblem): Record<string, unknown> => ({ file: join(dir, p.file), line: p.line, col: p.col, field: p.field, code: p.code, message: p.message })
    io.out(JSON.stringify({
      ok: errors.length === 0 && set !== undefined,
      path,
      revision: set?.revision ?? null,
      policies: set?.policies.length ?? 0,
      files: sources.policies.length,
      lists: sources.lists.length,
      errors: errors.map(line),
      warnings: warnings.map(line)
    }, null, 2))
    return errors.length > 0 || !set ? EXIT.failed : EXIT.ok
  }
  for (const p of ordered) io.out(formatProblemLine(p, dir))
  if (errors.length > 0 || !set) {
    io.out(`${normalize(path)}: ${plural(errors.length, 'error')}, ${plural(warnings.length, 'warning')}: the server would refuse this folder`)
    return EXIT.failed
  }
  io.out(`${normalize(path)}: ok (${plural(set.policies.length, 'policy', 'policies')} in ${plural(sources.policies.length, 'file')}, ${plural(sources.lists.length, 'list')}; ${plural(warnings.length, 'warning')}) revision ${set.revision}`)
  return EXIT.ok
}

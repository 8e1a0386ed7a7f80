/**
 * `stepup diff <old> <new> [--json]`: the semantic difference of two policy folders, one line
 * per change: `<kind> <file>:<line> <id>: <what>`, removed and loosened first.
 */
import { join } from 'node:path'
import { PolicyLoadError } from '../errors.js'
import { loadPolicySet } from '../policy/load.js'
import { diffSets } from '../policy/semantic-diff.js'
import { formatProblemLine } from './check.js'
import { EXIT, type Io } from './io.js'

export async function diffCommand (oldDir: string, newDir: string, options: { json: boolean }, io: Io): Promise<number> {
  const sets = []
  for (const dir of [oldDir, newDir]) {
    try {
      sets.push((await loadPolicySet(dir)).set)
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err
      io.err(`stepup diff: the policies in ${dir} do not validate (run stepup check ${dir}):`)
      for (const p of err.problems) io.err('  ' + formatProblemLine(p, dir))
      return EXIT.usage
    }
  }
  const [a, b] = sets as [NonNullable<typeof sets[0]>, NonNullable<typeof sets[0]>]
  const changes = diffSets(a, b)
  if (options.json) {
    io.out(JSON.stringify({ revisionBefore: a.revision, revisionAfter: b.revision, changes }, null, 2))
    return EXIT.ok
  }
  for (const c of changes) {
    const dir = c.kind === 'removed' ? oldDir : newDir
    io.out(`${c.kind.padEnd(9)} ${join(dir, c.file)}:${c.line} ${c.id}: ${c.what}`)
  }
  const count = (kind: string): number => changes.filter(c => c.kind === kind).length
  io.out(`${a.revision} -> ${b.revision}: ${count('added')} added, ${count('removed')} removed, ${count('loosened')} loosened, ${count('tightened')} tightened, ${count('changed')} changed`)
  return EXIT.ok
}

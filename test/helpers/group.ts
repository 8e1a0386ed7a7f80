/**
 * Runs the test files of one folder in one process, one file after another.
 *
 * Why: a test process costs about 1.7 s of CPU before its first test (Node, tap and its
 * TypeScript loader, coverage, the app's modules). With one process per file, the 60-odd small
 * files of test/unit, http, gateway, tokens and cli spent a third of the suite's CPU starting
 * up: `npm test` took 200 s on 2 cores (352 s of CPU), and 117-155 s (205-270 s of CPU) with
 * a process per folder. A file still runs alone, as before: `npx tap test/unit/ids.test.ts`.
 *
 * How: each file is imported inside a subtest named after it, which checks that the file added
 * tests. Those attach to the root and run after that subtest, before the next file is imported,
 * so two files never run at once.
 * Teardowns a file adds at its top level run when the whole folder is done; the folder shares
 * tap's per-process timeout (package.json).
 */
import { readdirSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export async function runFolder (folder: URL): Promise<void> {
  const dir = fileURLToPath(folder)
  const files = readdirSync(dir).filter(f => f.endsWith('.test.ts')).sort()
  if (files.length === 0) throw new Error(`no test files in ${dir}`)
  for (const file of files) {
    const url = new URL(file, folder)
    await t.test(relative(ROOT, fileURLToPath(url)), async file => {
      const queued = t.queue.length
      await import(url.href)
      // Alone, a file with no tests fails ("no tests found"); in a folder it would pass unseen.
      file.ok(t.queue.length > queued, 'the file has tests')
    })
  }
}

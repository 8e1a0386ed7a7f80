/**
 * Programs some tests need on the machine (redis-server, nginx). Without one, those tests skip
 * with a loud notice, except under CI=true, where a missing program is a failure.
 */
import { spawnSync } from 'node:child_process'

/** Does `cmd <args>` run and exit 0? */
export const onPath = (cmd: string, args: string[] = ['--version']): boolean =>
  spawnSync(cmd, args, { stdio: 'ignore' }).status === 0

/** The bits of a tap `Test` these helpers use. */
export interface TestLike {
  teardown: (fn: () => unknown) => void
  test: (name: string, options: { skip: string }, fn: () => void) => unknown
  fail: (message: string) => boolean
}

/**
 * True when nothing is missing and the tests of `topic` may go on. Otherwise they skip (a
 * skipped test, not a plan of 0: the file may already have run tests that need nothing, and
 * under `npm test` it shares its process with the other files of its folder), or fail under CI.
 */
export function requirePrograms (t: TestLike, topic: string, missing: string[], install: string): boolean {
  if (missing.length === 0) return true
  const what = `${missing.join(' and ')} not found on PATH`
  if (process.env.CI === 'true') {
    t.fail(`${what}: ${topic} tests are required under CI=true`)
    return false
  }
  const banner = '!'.repeat(78)
  console.error(`\n${banner}\n!!! SKIPPING ${topic.toUpperCase()} TESTS: ${what}. ${install} to run them (CI fails instead).\n${banner}\n`)
  t.test(`the tests that need ${topic}`, { skip: what }, () => {})
  return false
}

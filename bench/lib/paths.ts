/**
 * Where things are, whether the benchmark runs from source under tsx or, as `npm run bench`
 * runs it, compiled by tsc into bench/.tmp/build (the same compiler output `npm start` serves).
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)

/** True when this is the tsc output rather than the TypeScript source. */
export const compiled = self.endsWith('.js')

/** The repository root: the nearest folder above with a package.json. */
export const root = ((): string => {
  let dir = dirname(self)
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
})()

/** bench/ in the repository (results, .tmp), wherever the running code was compiled to. */
export const benchDir = join(root, 'bench')

/** A bench script for a child process: its compiled file under plain node, or its source under tsx. */
export function script (name: string): { file: string, execArgv: string[] } {
  return compiled
    ? { file: join(dirname(self), '..', `${name}.js`), execArgv: [] }
    : { file: join(benchDir, `${name}.ts`), execArgv: ['--import', 'tsx'] }
}

/**
 * The step-up path against the allow path (and a bare route), in-process: bench/lib/ab.ts.
 *
 *   npx tsx bench/ab.ts [--batch 1000] [--rounds 12] [--compare <source tree>] [--paths allow,step_up] [--known-device] [--json <file>]
 *
 * `--compare <dir>`: the same paths through another source tree's buildApp (for example
 * `git archive <commit> src policies | tar -x -C /tmp/base` with node_modules linked), loaded
 * into this process and measured in the same alternation: an A/B of code, not only of paths.
 * `--known-device`: also the common step-up (the payout from the subject's known device at home,
 * where only large-payouts fires).
 * `--paths`: measure only these (for a CPU profile of one path:
 * `node --cpu-prof --import tsx bench/ab.ts --paths step_up`).
 */
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { openGeoLookup } from '../src/signals/geo.js'
import { comparePaths, formatPaths, type Tree } from './lib/ab.js'
import { root } from './lib/paths.js'

const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] ?? fallback : fallback }
const compare = arg('compare', '')
const jsonOut = arg('json', '')
const only = arg('paths', '') === '' ? undefined : new Set(arg('paths', '').split(','))

async function loadTree (dir: string): Promise<Tree> {
  const m = async (path: string): Promise<Record<string, unknown>> => await import(pathToFileURL(join(dir, path)).href) as Record<string, unknown>
  const [app, load, memory] = await Promise.all([m('src/app.ts'), m('src/policy/load.ts'), m('src/signals/memory-history.ts')])
  return { label: 'compare', policiesDir: join(dir, 'policies'), ...app, ...load, ...memory } as unknown as Tree
}

const geo = await openGeoLookup({})
const result = await comparePaths({
  geo,
  policiesDir: join(root, 'policies'),
  batch: Number(arg('batch', '1000')),
  rounds: Number(arg('rounds', '12')),
  nowS: Math.floor(Date.now() / 1000),
  knownDevice: process.argv.includes('--known-device'),
  ...(compare !== '' ? { trees: [await loadTree(resolve(compare))] } : {}),
  ...(only ? { only } : {})
})
geo.close()
for (const line of formatPaths(result)) console.log(line)
if (jsonOut !== '') writeFileSync(jsonOut, JSON.stringify({ compare: compare || null, ...result }, null, 2))

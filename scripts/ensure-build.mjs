// `npm start` runs this first: it compiles src/ to dist/ only when a source is newer than the
// last build, so a restart costs no compile. Plain JavaScript, so it needs no TypeScript loader.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import console from 'node:console'
import process from 'node:process'

const STAMP = join('dist', '.build-stamp')
const INPUTS = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json']

/** The newest modification time under `path` (a file or a folder, recursively). */
function newest (path) {
  if (!existsSync(path)) return 0
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  let latest = stat.mtimeMs // a deleted or renamed file changes its folder's time
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)))
  return latest
}

const built = existsSync(STAMP) ? statSync(STAMP).mtimeMs : 0
const sources = Math.max(...INPUTS.map(newest))
if (built >= sources && existsSync(join('dist', 'server.js'))) process.exit(0)

let tsc
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
} catch {
  // A production install (no devDependencies) runs the dist/ it was shipped with.
  if (existsSync(join('dist', 'server.js'))) {
    console.warn('stepup-pdp: sources are newer than dist/, but TypeScript is not installed; starting the existing build')
    process.exit(0)
  }
  console.error('stepup-pdp: dist/ is missing and TypeScript is not installed: run `npm install` (it builds)')
  process.exit(1)
}
console.warn(built === 0 ? 'stepup-pdp: building dist/ (first start)' : 'stepup-pdp: sources changed since the last build; rebuilding dist/')
// Incremental: after an edit only what changed is compiled again. Without dist/server.js the
// build information is stale (someone cleaned dist/ by hand), so it goes too.
const buildInfo = join('dist', '.tsbuildinfo')
if (!existsSync(join('dist', 'server.js'))) rmSync(buildInfo, { force: true })
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--incremental', '--tsBuildInfoFile', buildInfo], { stdio: 'inherit' })
if (result.status !== 0) process.exit(result.status ?? 1)
writeFileSync(STAMP, `${new Date().toISOString()}\n`)

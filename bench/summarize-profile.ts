/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time,
 * self time by package / source file, and inclusive time of the project's own functions.
 *   npx tsx bench/summarize-profile.ts <file.cpuprofile> [top=25]
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { root } from './lib/paths.js'

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

export interface Row { name: string, where: string, selfMs: number, selfPct: number, totalPct: number }

const ROOT = `${root}/`
const BUILD = 'bench/.tmp/build/'

export function where (url: string): { file: string, group: string } {
  if (url === '') return { file: '(native)', group: '(native / V8)' }
  let path = url.replace(/^file:\/\//, '')
  if (path.startsWith(ROOT)) path = path.slice(ROOT.length)
  if (path.startsWith(BUILD)) path = path.slice(BUILD.length) // the compiled benchmark: src/x.js
  const nm = path.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/')
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
    return { file: `${pkg}/${rest.slice(pkg.includes('/') ? 2 : 1).join('/')}`, group: pkg }
  }
  if (path.startsWith('node:')) return { file: path, group: 'node (core)' }
  if (path.startsWith('src/')) return { file: path, group: path }
  return { file: path, group: path.split('/').slice(0, 2).join('/') }
}

export function summarize (file: string, top = 25, units?: { count: number, name: string }): { rows: Row[], groups: Array<[string, number]>, own: Row[], totalMs: number, text: string } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(p.nodes.map(n => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const key = (n: ProfileNode): string => `${n.callFrame.functionName || '(anonymous)'}\u0000${n.callFrame.url}\u0000${n.callFrame.lineNumber}`

  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const groups = new Map<string, number>()
  let all = 0
  let idle = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000
    const node = byId.get(p.samples[i]!)!
    if (node.callFrame.functionName === '(idle)') { idle += dt; continue }
    all += dt
    const k = key(node)
    self.set(k, (self.get(k) ?? 0) + dt)
    const g = node.callFrame.url === '' ? node.callFrame.functionName : where(node.callFrame.url).group
    groups.set(g, (groups.get(g) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const kk = key(byId.get(id)!)
      if (seen.has(kk)) continue
      seen.add(kk)
      total.set(kk, (total.get(kk) ?? 0) + dt)
    }
  }
  const row = (k: string): Row => {
    const [name, url, line] = k.split('\u0000')
    return { name: name!, where: `${where(url!).file}:${Number(line) + 1}`, selfMs: self.get(k) ?? 0, selfPct: (self.get(k) ?? 0) / all, totalPct: (total.get(k) ?? 0) / all }
  }
  const rows = [...self.keys()].map(row).sort((a, b) => b.selfMs - a.selfMs).slice(0, top)
  const own = [...total.keys()].filter(k => k.split('\u0000')[1]!.includes('/src/')).map(row).sort((a, b) => b.totalPct - a.totalPct).slice(0, top)
  const groupRows = [...groups.entries()].sort((a, b) => b[1] - a[1]).map(([g, ms]) => [g, ms / all] as [string, number])

  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  // With a unit count (requests, decisions), each share is also shown as µs per unit.
  const per = (x: number): string => units ? ` | ${((x * all * 1000) / units.count).toFixed(2)}` : ''
  const perHead = units ? ` | µs per ${units.name}` : ''
  const perAlign = units ? '|---:' : ''
  const L: string[] = []
  L.push(`Profile ${file}: ${all.toFixed(0)} ms of CPU samples (+ ${idle.toFixed(0)} ms idle)${units ? `, ${units.count} ${units.name}s: ${((all * 1000) / units.count).toFixed(1)} µs of CPU per ${units.name}` : ''}`, '')
  L.push('Top self time (line numbers are those of the JavaScript that ran: tsc output under `npm run bench`, one line per module under tsx):', '', `| function | where | self | total${units ? `${perHead} (self)` : ''} |`, `|---|---|---:|---:${perAlign}|`)
  for (const r of rows) L.push(`| ${r.name} | ${r.where} | ${pct(r.selfPct)} | ${pct(r.totalPct)}${per(r.selfPct)} |`)
  L.push('', 'Self time by package / project file:', '', `| package or file | self${perHead} |`, `|---|---:${perAlign}|`)
  for (const [g, x] of groupRows.slice(0, top)) L.push(`| ${g} | ${pct(x)}${per(x)} |`)
  L.push('', 'Project functions by inclusive time:', '', `| function | where | self | total${units ? `${perHead} (total)` : ''} |`, `|---|---|---:|---:${perAlign}|`)
  for (const r of own) L.push(`| ${r.name} | ${r.where} | ${pct(r.selfPct)} | ${pct(r.totalPct)}${per(r.totalPct)} |`)
  return { rows, groups: groupRows, own, totalMs: all, text: L.join('\n') }
}

/**
 * The main thread's profile in `dir`: with `--import tsx` the module loader runs in a worker
 * thread that writes its own (mostly idle) profile beside it; the main thread's is the largest.
 */
export function mainProfile (dir: string): string {
  const files = readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => join(dir, f))
  files.sort((a, b) => statSync(b).size - statSync(a).size)
  if (!files[0]) throw new Error(`no .cpuprofile in ${dir}`)
  return files[0]
}

/** Summarises the main profile of `dir` into `<dir>.md`; returns the text. */
export function summarizeDir (dir: string, label: string, top = 30, units?: { count: number, name: string }): string {
  const text = `# ${label}\n\n${summarize(mainProfile(dir), top, units).text}\n`
  writeFileSync(`${dir}.md`, text)
  return text
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2]
  if (!file) { console.error('usage: tsx bench/summarize-profile.ts <file.cpuprofile | folder> [top]'); process.exit(2) }
  const path = statSync(file).isDirectory() ? mainProfile(file) : file
  console.log(summarize(path, Number(process.argv[3] ?? 25)).text)
}

/**
 * Times loading and compiling a policy folder in a fresh process (as a server start does):
 * `loadPolicySet(dir)` cold, then `runs` more times warm, and the read / compile split
 * (readPolicyFolder, compilePolicies). Prints one JSON line.
 */
import { loadPolicySet } from '../src/policy/load.js'
import { compilePolicies } from '../src/policy/compile.js'
import { readPolicyFolder } from '../src/policy/source.js'

const dir = process.argv[2]!
const runs = Number(process.argv[3] ?? 2)

const t0 = performance.now()
const { set } = await loadPolicySet(dir)
const coldMs = performance.now() - t0

const warm: number[] = []
const read: number[] = []
const compile: number[] = []
for (let i = 0; i < runs; i++) {
  const a = performance.now()
  await loadPolicySet(dir)
  warm.push(performance.now() - a)
  const b = performance.now()
  const sources = await readPolicyFolder(dir)
  const c = performance.now()
  compilePolicies(sources)
  const d = performance.now()
  read.push(c - b)
  compile.push(d - c)
}
const median = (xs: number[]): number => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor(s.length / 2)] ?? NaN }
console.log(JSON.stringify({ policies: set.policies.length, coldMs, warmMs: median(warm), readMs: median(read), compileMs: median(compile) }))

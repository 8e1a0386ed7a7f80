/**
 * The long fuzzing run: `npm run fuzz -- --minutes N [--seed S]`.
 * The same properties as test/fuzz/ (npm test runs a bounded pass): POST /decide with valid,
 * near-valid and hostile requests (no 5xx, a 4xx changes no stored state, no stall), and mutated
 * policy folders (a load succeeds or names file:line). About 70 % of the time goes to requests,
 * 30 % to folders, in rounds with fresh seeds. Exits 1 when any property was violated.
 */
import { openGeoLookup } from '../src/signals/geo.js'
import { fuzzDecide, STALL_MS, summarizeViolations, type Violation } from '../test/fuzz/decide-harness.js'
import { fuzzFolders } from '../test/fuzz/folders.js'

function parseArgs (argv: string[]): { minutes: number, seed: number } {
  let minutes = 5
  let seed = Math.floor(Math.random() * 2 ** 31)
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--minutes') minutes = Number(argv[++i])
    else if (argv[i] === '--seed') seed = Number(argv[++i])
    else throw new Error(`unknown argument ${argv[i]} (use --minutes N, --seed S)`)
  }
  if (!Number.isFinite(minutes) || minutes <= 0) throw new Error('--minutes: expected a positive number')
  if (!Number.isInteger(seed)) throw new Error('--seed: expected an integer')
  return { minutes, seed }
}

async function main (): Promise<void> {
  const { minutes, seed } = parseArgs(process.argv.slice(2))
  const geo = await openGeoLookup({})
  const end = Date.now() + minutes * 60_000
  const violations: Violation[] = []
  let requests = 0
  let folders = 0
  let worstBest = 0
  let maxFirst = 0
  console.log(`fuzz: ${minutes} min, seed ${seed} (replay a round with --seed <its seed>)`)
  for (let round = 0; Date.now() < end; round++) {
    const roundSeed = seed + round * 1_000_003
    const left = end - Date.now()
    const d = await fuzzDecide({ geo, seed: roundSeed, runs: 1_000_000, deadline: Date.now() + Math.min(left * 0.7, 120_000) })
    requests += d.requests
    worstBest = Math.max(worstBest, d.worstBestMs)
    maxFirst = Math.max(maxFirst, d.maxMs)
    violations.push(...d.violations)
    if (Date.now() >= end) {
      console.log(`fuzz: round ${round} (seed ${roundSeed}): ${d.requests} requests, ${d.violations.length} violations`)
      break
    }
    const f = await fuzzFolders({ seed: roundSeed, runs: 1_000_000, deadline: Date.now() + Math.min((end - Date.now()), 50_000) })
    folders += f.folders
    violations.push(...f.violations)
    console.log(`fuzz: round ${round} (seed ${roundSeed}): ${d.requests} requests (p99 ${d.p99Ms.toFixed(2)} ms, best-of-three worst ${d.worstBestMs.toFixed(1)} ms), ${f.folders} folders (${f.loaded} loaded); ${d.violations.length + f.violations.length} violations`)
  }
  geo.close()
  console.log(`fuzz: ${requests} requests, ${folders} folders; slowest first try ${maxFirst.toFixed(0)} ms, worst best-of-three ${worstBest.toFixed(1)} ms (limit ${STALL_MS} ms)`)
  if (worstBest > STALL_MS) violations.push({ property: `no request over ${STALL_MS} ms alone`, label: '', detail: `${worstBest.toFixed(1)} ms` })
  if (violations.length > 0) {
    console.error(`fuzz: FAILED\n${summarizeViolations(violations, 5).join('\n')}`)
    process.exit(1)
  }
  console.log('fuzz: every property held')
  process.exit(0)
}

main().catch(err => {
  console.error(`fuzz: ${(err as Error).stack ?? String(err)}`)
  process.exit(2)
})

// Property-based fuzzing of policy folders (bounded: 200 mutated copies of policies/; `npm run
// fuzz` runs longer): each load succeeds or gives a PolicyLoadError naming file:line, in time,
// with no unhandled rejection. Replay a run with FUZZ_SEED=<seed printed below>.
import t from 'tap'
import { summarizeViolations } from './decide-harness.js'
import { fuzzFolders, LOAD_LIMIT_MS } from './folders.js'

const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)
const runs = Number(process.env.FUZZ_FOLDERS ?? 200)
const report = await fuzzFolders({ seed, runs })

t.comment(`seed ${seed}: ${report.folders} folders in ${report.seconds.toFixed(1)} s: ${report.loaded} loaded, ${report.refused} refused; slowest load ${report.maxMs.toFixed(0)} ms (${report.maxLabel})`)
t.equal(report.folders, runs, 'every folder was loaded')
t.ok(report.loaded > 0 && report.refused > 0, 'the mutations produce both valid and invalid folders')
for (const property of ['a bad folder gives a PolicyLoadError', 'a PolicyLoadError names file:line', `a load ends within ${LOAD_LIMIT_MS} ms`, 'no unhandled rejection']) {
  t.same(summarizeViolations(report.violations.filter(v => v.property === property), 5), [], `${property} (seed ${seed})`)
}

// A reload of a malicious folder while /decide runs under load: the load happens in the
// worker, bounded in time, size and memory, so no decision waits for it, the reload is refused
// naming the file, and the last good set keeps serving.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import { createPolicyReloader, type ReloadResult } from '../../src/policy/reloader.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'

const geo = await openGeoLookup({})
const GOOD = 'policies:\n  - id: guard\n    actions: [payments.payout]\n    require: { aal: 3, maxAge: 5m }\n'

const dir = mkdtempSync(join(tmpdir(), 'stepup-malicious-'))
writeFileSync(join(dir, 'good.yaml'), GOOD)
const holder = new PolicyHolder((await loadPolicySet(dir)).set)
const reloader = createPolicyReloader({
  dir, holder, logger: pino({ level: 'silent' }),
  limits: { timeoutMs: 3000, maxFileBytes: 2 * 1024 * 1024, maxHeapMb: 256 }
})
const app = await buildApp({ apiKeys: [], adminApiKeys: [] }, { policies: holder, geo, history: createMemoryHistoryStore({ maxSubjects: 1000 }), reloader, maxEventLoopDelayMs: 0 })
t.teardown(async () => { reloader.close(); await app.close() })

// The worker is started (and, from TypeScript sources, compiled) before the measurements.
await reloader.reload('warm-up')

const decide = () => app.inject({
  method: 'POST', url: '/decide',
  payload: { action: 'payments.payout', subject: { id: 'u1' }, claims: { amr: ['pwd', 'otp'], auth_time: Math.floor(Date.now() / 1000) } }
})

/** Runs /decide back to back on `concurrency` lanes until `work` settles; returns every latency. */
async function underLoad<T> (work: Promise<T>, concurrency = 2): Promise<{ latencies: number[], result: T, decisions: string[] }> {
  let done = false
  const latencies: number[] = []
  const decisions: string[] = []
  const lane = async (): Promise<void> => {
    while (!done) {
      const started = performance.now()
      const res = await decide()
      latencies.push(performance.now() - started)
      decisions.push(`${res.statusCode} ${res.json().decision}`)
    }
  }
  const lanes = Array.from({ length: concurrency }, lane)
  const result = await work
  done = true
  await Promise.all(lanes)
  return { latencies: latencies.sort((a, b) => a - b), result, decisions }
}

const p99 = (sorted: number[]): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth)
const laughs = (): string => {
  let text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
  for (let i = 1; i <= 9; i++) text += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(',')}]\n`
  return text + 'policies:\n  - id: laughs\n    actions: [x.y]\n    description: *a9\n'
}

const CASES: Array<{ name: string, file: string, text: () => string, refused?: RegExp }> = [
  { name: 'a huge file', file: 'huge.yaml', text: () => 'policies:\n' + '  # padding\n'.repeat(300_000), refused: /huge\.yaml:1:1 \(file\): \d+ bytes: larger than the limit/ },
  { name: 'a 0.9 MB malformed file', file: 'malformed.yaml', text: () => 'policies:\n' + '  - id: "x\n    actions: [a, {b: [c, {d: '.repeat(20_000), refused: /malformed\.yaml:\d+:\d+ \(yaml\)/ },
  { name: 'deep nesting', file: 'deep.yaml', text: () => `policies: ${nested(50_000)}\n`, refused: /deep\.yaml:\d+:\d+ \(yaml\): nesting exceeded/ },
  { name: 'billion-laughs aliases', file: 'laughs.yaml', text: laughs, refused: /laughs\.yaml:\d+:\d+ \(yaml\): aliases expand to more than/ },
  {
    // matches() runs in linear time (RE2): the pattern that backtracks exponentially elsewhere
    // loads, and its check at load time is quick.
    name: 'a constant exponential regex in a condition',
    file: 'regex.yaml',
    text: () => `policies:\n  - id: redos\n    actions: [x.y]\n    when:\n      - condition: "'${'a'.repeat(40)}!'.matches('^(a|a)*$') || context.amount > 1"\n`
  }
]

for (const c of CASES) {
  t.test(`${c.name}: refused naming the file, the good set keeps serving, no decision waits`, async t => {
    writeFileSync(join(dir, c.file), c.text())
    t.teardown(() => rmSync(join(dir, c.file), { force: true }))
    // A quick refusal is repeated, so the window holds enough decisions to judge.
    const reloads = async (): Promise<ReloadResult> => {
      let last = await reloader.reload(c.name)
      for (let i = 1; i < 10 && !last.errors.some(e => e.includes('took longer')); i++) last = await reloader.reload(c.name)
      return last
    }
    // The same load without a reload, just before, is the baseline: this machine's own noise
    // (other processes share its cores) is not the reload's doing. A window that misses the
    // bound is measured again, twice at most: a load on the serving thread misses it every time.
    let baseline: Awaited<ReturnType<typeof underLoad>>
    let during: Awaited<ReturnType<typeof underLoad<ReloadResult>>>
    let attempt = 0
    do {
      baseline = await underLoad(new Promise(resolve => setTimeout(resolve, 1000)))
      during = await underLoad(reloads())
    } while (++attempt < 3 && p99(during.latencies) > p99(baseline.latencies) + 50)
    const { latencies, result, decisions } = during
    if (c.refused) {
      t.equal(result.ok, false, 'refused')
      t.match(result.errors.join('\n'), c.refused, result.errors.join('\n').slice(0, 300))
      t.equal(holder.current.policies.map(p => p.id).join(), 'guard', 'the last good set serves')
    } else {
      t.equal(result.ok, true, `loaded: ${result.errors.join('; ')}`)
      t.teardown(async () => { rmSync(join(dir, c.file), { force: true }); await reloader.reload('restore', { allowRemovals: true }) })
    }
    t.ok(decisions.length > 0 && decisions.every(d => d === '200 step_up'), `all ${decisions.length} decisions during the reload answered`)
    const within = p99(latencies)
    const before = p99(baseline.latencies)
    t.ok(within <= before + 50, `p99 during the reload ${within.toFixed(1)} ms, without ${before.toFixed(1)} ms: within 50 ms (max ${latencies[latencies.length - 1]!.toFixed(1)} ms, attempt ${attempt} of 3)`)
  })
}

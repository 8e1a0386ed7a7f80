// Property-based fuzzing of POST /decide (bounded: 20,000 requests; `npm run fuzz` runs longer).
// Replay a run with FUZZ_SEED=<seed printed below>.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { fuzzDecide, STALL_MS, summarizeViolations } from './decide-harness.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)
const runs = Number(process.env.FUZZ_REQUESTS ?? 20_000)
const report = await fuzzDecide({ geo, seed, runs })

t.comment(`seed ${seed}: ${report.requests} requests in ${report.seconds.toFixed(1)} s; statuses ${JSON.stringify(report.statuses)}`)
t.comment(`slowest first try ${report.maxMs.toFixed(1)} ms (${report.maxLabel}); p99 ${report.p99Ms.toFixed(2)} ms; `
  + `over ${STALL_MS} ms and sent again alone: ${report.retried.map(r => `${r.firstMs.toFixed(0)} -> best ${r.bestMs.toFixed(1)} ms`).join(', ') || 'none'}`)

const byProperty = (property: string): string[] =>
  summarizeViolations(report.violations.filter(v => v.property === property), 5)

t.equal(report.requests, runs, 'every request was sent')
for (const property of ['no 5xx', 'every 4xx is { error, message }', 'a 4xx changes no stored state', 'a 200 carries a decision', 'a valid request is answered', 'no unhandled rejection or exception']) {
  const found = byProperty(property)
  t.same(found, [], `${property} (seed ${seed})`)
}
const kinds = Object.keys(report.statuses)
t.same(kinds.sort(), ['hostile', 'near-valid', 'valid'], 'the mix reached every kind of request')
t.ok(Object.keys(report.statuses['near-valid'] ?? {}).includes('400'), 'near-valid requests were refused (the mutations bite)')
// Each request was sent alone; the slowest were sent again alone, and judged on their best of
// three, so a pause of the machine does not count, a stall in the service does.
t.ok(report.worstBestMs <= STALL_MS, `no request takes over ${STALL_MS} ms alone (worst best-of-three ${report.worstBestMs.toFixed(1)} ms; seed ${seed})`)

// Every spelling of a listed address is the same address: an IPv4 in lists/threats.txt
// (192.0.2.0/24) written in any IPv4-embedding IPv6 form is denied like its dotted form.
const hex = (a: number, b: number): string => ((a << 8) | b).toString(16)
const SPELLINGS: Record<string, (o: number[]) => string> = {
  dotted: o => o.join('.'),
  'IPv4-mapped': o => `::ffff:${o.join('.')}`,
  'IPv4-mapped, hex': o => `::ffff:${hex(o[0]!, o[1]!)}:${hex(o[2]!, o[3]!)}`,
  'IPv4-compatible': o => `::${o.join('.')}`,
  'IPv4-compatible, hex': o => `::${hex(o[0]!, o[1]!)}:${hex(o[2]!, o[3]!)}`,
  '6to4': o => `2002:${hex(o[0]!, o[1]!)}:${hex(o[2]!, o[3]!)}::1`,
  NAT64: o => `64:ff9b::${o.join('.')}`,
  'NAT64, hex': o => `64:ff9b::${hex(o[0]!, o[1]!)}:${hex(o[2]!, o[3]!)}`,
  Teredo: o => `2001:0:4136:e378:8000:63bf:${hex(o[0]! ^ 255, o[1]! ^ 255)}:${hex(o[2]! ^ 255, o[3]! ^ 255)}`
}

t.test('a listed IPv4 address is denied in every IPv6 spelling', async t => {
  const { fuzzApp } = await import('./decide-harness.js')
  const fc = (await import('fast-check')).default
  const app = await fuzzApp(geo, { writes: 0 })
  t.teardown(() => app.close())
  const dodged = new Map<string, string>() // form -> one example
  await fc.assert(fc.asyncProperty(fc.nat(255), fc.constantFrom(...Object.keys(SPELLINGS)), async (last, form) => {
    const ip = SPELLINGS[form]!([192, 0, 2, last])
    const res = await app.inject({ method: 'POST', url: '/decide', payload: { action: 'profile.read', subject: { id: 'spell' }, ip } })
    if (res.statusCode !== 200 || res.json<{ decision: string }>().decision !== 'deny') dodged.set(form, `${form}, e.g. ${ip}: HTTP ${res.statusCode} ${res.json<{ decision?: string }>().decision ?? res.body.slice(0, 80)}`)
  }), { seed, numRuns: 300 })
  t.same([...dodged.values()].sort(), [], 'no spelling dodges the list')
})

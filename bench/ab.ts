/**
 * In-process A/B of the /decide paths: the real app (buildApp as src/server.ts wires it: pino at
 * info onto a buffered /dev/null destination, memory history, metrics, memory audit) driven by
 * `app.inject`, in alternating batches, so every path sees the same machine state. HTTP runs on a
 * shared box swing by ±15–30 %; alternating batches of ~1,000 requests keep the noise near ±3 %.
 *
 *   npx tsx bench/ab.ts [--batch 1000] [--rounds 12] [--compare <source tree>] [--json <file>] [--paths allow,step_up]
 *
 * Paths (the example policies; the history learnt first, as a server that has been up a while):
 *   allow    profile.read, fresh password + OTP session, known device, home address: nothing fires
 *   step_up  payments.payout of 2,500 on a password-only session, known device, home address
 *   bare     Fastify with the service's options and the route's schemas answering the step-up
 *            answer (the floor: parsing, validation, serialization and inject, no decision)
 * `--compare <dir>`: the same two paths through another source tree's buildApp (for example a
 * `git archive` of main), loaded into this process, in the same alternation: A/B of code.
 * Time per request is CPU time (user + system) of the batch over its size; the median batch is
 * reported, with the spread (first to third quartile) across rounds.
 */
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { root } from './lib/paths.js'
import { HOME_IPS } from './lib/workload.js'

const arg = (name: string, fallback: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] ?? fallback : fallback }
const BATCH = Number(arg('batch', '1000'))
const ROUNDS = Number(arg('rounds', '12'))
const compare = arg('compare', '')
const jsonOut = arg('json', '')
/** Only these paths (for a CPU profile of one: `node --cpu-prof --import tsx bench/ab.ts --paths step_up`). */
const only = arg('paths', '') === '' ? undefined : new Set(arg('paths', '').split(','))

const nowS = Math.floor(Date.now() / 1000)
const home = HOME_IPS[0].ip

/** A few subjects per path, so the memory store's per-subject state is realistic but bounded. */
const bodies = {
  allow: (i: number): Record<string, unknown> => ({
    action: 'profile.read',
    subject: { id: `ab-allow-${i % 50}` },
    claims: { sub: `ab-allow-${i % 50}`, amr: ['pwd', 'otp'], auth_time: nowS - 120, iat: nowS - 120, exp: nowS + 3480 },
    ip: home,
    device: { fingerprint: `fp-allow-${i % 50}` }
  }),
  step_up: (i: number): Record<string, unknown> => ({
    action: 'payments.payout',
    subject: { id: `ab-step-${i % 50}` },
    claims: { sub: `ab-step-${i % 50}`, amr: ['pwd'], auth_time: nowS - 300, iat: nowS - 300, exp: nowS + 3300 },
    ip: home,
    device: { fingerprint: `fp-step-${i % 50}` },
    context: { amount: 2500, currency: 'EUR' }
  })
}

interface Tree {
  buildApp: (config: { apiKeys: string[], adminApiKeys: string[] }, deps: Record<string, unknown>) => Promise<FastifyInstance>
  fastifyOptions: (logger: unknown) => Record<string, unknown>
  loadPolicySet: (dir: string) => Promise<{ set: unknown }>
  PolicyHolder: new (set: unknown) => unknown
  openGeoLookup: (o: Record<string, unknown>) => Promise<{ close: () => void }>
  createMemoryHistoryStore: (o: Record<string, unknown>) => unknown
}

async function loadTree (dir: string): Promise<Tree> {
  const m = async (path: string): Promise<Record<string, unknown>> => await import(pathToFileURL(join(dir, path)).href) as Record<string, unknown>
  const [app, load, geo, memory] = await Promise.all([m('src/app.ts'), m('src/policy/load.ts'), m('src/signals/geo.ts'), m('src/signals/memory-history.ts')])
  return { ...app, ...load, ...geo, ...memory } as unknown as Tree
}

const devNull = (): ReturnType<typeof pino> =>
  pino({ level: 'info', base: { service: 'stepup-pdp' } }, pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }))

async function decideApp (tree: Tree, geo: unknown): Promise<FastifyInstance> {
  const { set } = await tree.loadPolicySet(join(root, 'policies'))
  const app = await tree.buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new tree.PolicyHolder(set),
    geo,
    history: tree.createMemoryHistoryStore({ maxSubjects: 100_000 }),
    logger: devNull()
  })
  await app.ready()
  return app
}

async function bareApp (tree: Tree, answer: unknown): Promise<FastifyInstance> {
  const contract = await import(pathToFileURL(join(root, 'src/contract/index.ts')).href) as typeof import('../src/contract/index.js')
  const app: FastifyInstance = Fastify(tree.fastifyOptions(devNull()) as never)
  app.addSchema(contract.errorSchema)
  app.post('/decide', {
    schema: { body: contract.decideRequestSchema, response: { 200: contract.decisionSchema } },
    validatorCompiler: () => contract.decideBodyValidator
  }, async () => answer)
  await app.ready()
  return app
}

interface Path { name: string, app: FastifyInstance, body: (i: number) => Record<string, unknown>, expect: string }

async function batch (p: Path, n: number, offset: number): Promise<number> {
  const before = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const res = await p.app.inject({ method: 'POST', url: '/decide', payload: p.body(offset + i) })
    if (res.statusCode !== 200) throw new Error(`${p.name}: HTTP ${res.statusCode}: ${res.body}`)
  }
  const used = process.cpuUsage(before)
  return (used.user + used.system) / n
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  const i = (s.length - 1) * q
  const lo = Math.floor(i)
  return s[lo]! + (s[Math.ceil(i)]! - s[lo]!) * (i - lo)
}

async function main (): Promise<void> {
  const self = await loadTree(root)
  const geo = await self.openGeoLookup({})
  const paths: Path[] = []
  const here = await decideApp(self, geo)
  paths.push({ name: 'allow', app: here, body: bodies.allow, expect: 'allow' }, { name: 'step_up', app: here, body: bodies.step_up, expect: 'step_up' })
  if (compare !== '') {
    const other = await loadTree(resolve(compare))
    const there = await decideApp(other, geo)
    paths.push({ name: 'allow (compare)', app: there, body: bodies.allow, expect: 'allow' }, { name: 'step_up (compare)', app: there, body: bodies.step_up, expect: 'step_up' })
  }
  // Learn the devices and locations, check each path answers what it is named after.
  for (const p of paths) {
    for (let i = 0; i < 100; i++) await p.app.inject({ method: 'POST', url: '/decide', payload: p.body(i) })
    const res = await p.app.inject({ method: 'POST', url: '/decide', payload: p.body(0) })
    const decision = res.json<{ decision: string }>().decision
    if (decision !== p.expect) throw new Error(`${p.name}: answers ${decision}, expected ${p.expect}`)
  }
  const answer = (await here.inject({ method: 'POST', url: '/decide', payload: bodies.step_up(0) })).json()
  paths.push({ name: 'bare', app: await bareApp(self, answer), body: bodies.step_up, expect: 'step_up' })

  if (only) paths.splice(0, paths.length, ...paths.filter(p => only.has(p.name)))
  // Warm-up, then rounds; the order alternates (forward, backward) so no path always follows another.
  for (const p of paths) await batch(p, BATCH, 0)
  const samples = new Map(paths.map(p => [p.name, [] as number[]]))
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? paths : [...paths].reverse()
    for (const p of order) samples.get(p.name)!.push(await batch(p, BATCH, r * BATCH))
  }

  const summary = paths.map(p => {
    const xs = samples.get(p.name)!
    return { path: p.name, usMedian: quantile(xs, 0.5), usQ1: quantile(xs, 0.25), usQ3: quantile(xs, 0.75) }
  })
  const med = (name: string): number | undefined => summary.find(s => s.path === name)?.usMedian
  console.log(`in-process A/B: ${ROUNDS} rounds x ${BATCH} requests per path, CPU µs per request (median [Q1–Q3])`)
  for (const s of summary) console.log(`  ${s.path.padEnd(18)} ${s.usMedian.toFixed(1).padStart(7)}  [${s.usQ1.toFixed(1)}–${s.usQ3.toFixed(1)}]`)
  const ratios: Record<string, number> = {}
  const ratio = (label: string, a: string, b: string): void => {
    const x = med(a)
    const y = med(b)
    if (x === undefined || y === undefined) return
    ratios[label] = x / y
    console.log(`  ${label.padEnd(34)} ${(x / y).toFixed(3)}`)
  }
  ratio('step_up / allow', 'step_up', 'allow')
  ratio('allow / bare', 'allow', 'bare')
  ratio('step_up / bare', 'step_up', 'bare')
  ratio('step_up (compare) / allow (compare)', 'step_up (compare)', 'allow (compare)')
  ratio('allow / allow (compare)', 'allow', 'allow (compare)')
  ratio('step_up / step_up (compare)', 'step_up', 'step_up (compare)')
  if (jsonOut !== '') writeFileSync(jsonOut, JSON.stringify({ batch: BATCH, rounds: ROUNDS, compare: compare || null, summary, ratios }, null, 2))

  for (const p of paths) await p.app.close()
  geo.close()
}

await main()

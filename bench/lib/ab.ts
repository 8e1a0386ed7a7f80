/**
 * Step-up path vs allow path, in-process: the real app (buildApp as src/server.ts wires it: pino
 * at info onto a buffered /dev/null destination, memory history, metrics, memory audit) driven
 * by `app.inject` in alternating batches, so every path sees the same machine state. HTTP runs
 * on a shared box swing by ±15–30 %; alternating batches of ~1,000 requests keep the noise near
 * ±3 %. The paths (the example policies; history learnt first):
 *   allow    profile.read, fresh password + OTP session, known device, home address: nothing fires
 *   step_up  payments.payout of 2,500 on a password-only session from a device and country the
 *            subject has never used: three policies fire and merge into one requirement
 *   step_up (known device)  the same payout from the subject's known device at home: only
 *            large-payouts fires (the common step-up; measured when `knownDevice` is set)
 *   bare     Fastify with the service's options and the route's schemas and validator answering
 *            the step-up answer (the floor: parsing, validation, serialization and inject)
 * Extra trees (bench/ab.ts --compare) add the same two paths through another source tree.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { pino, type Logger } from 'pino'
import { buildApp, fastifyOptions } from '../../src/app.js'
import * as contract from '../../src/contract/index.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import type { GeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { HOME_IPS } from './workload.js'

/** What building an app needs from a source tree (this one, or another loaded by bench/ab.ts). */
export interface Tree {
  label: string
  /** The tree's own example policies (a compared tree may not read this one's policy format). */
  policiesDir?: string
  buildApp: (config: { apiKeys: string[], adminApiKeys: string[] }, deps: Record<string, unknown>) => Promise<FastifyInstance>
  loadPolicySet: (dir: string) => Promise<{ set: unknown }>
  PolicyHolder: new (set: unknown) => unknown
  createMemoryHistoryStore: (o: { maxSubjects: number }) => unknown
}

export const thisTree: Tree = { label: '', buildApp: buildApp as unknown as Tree['buildApp'], loadPolicySet, PolicyHolder: PolicyHolder as unknown as Tree['PolicyHolder'], createMemoryHistoryStore }

/** `n` request bodies of a path: a few subjects, so per-subject state stays realistic. */
export function pathBodies (path: 'allow' | 'step_up' | 'step_up_known', nowS: number, n = 50): contract.DecideBody[] {
  const home = HOME_IPS[0].ip
  if (path === 'step_up_known') {
    // A strong session from the same device first teaches it (see comparePaths), then the payout.
    return Array.from({ length: n }, (_, i) => ({
      action: 'payments.payout',
      subject: { id: `ab-known-${i}` },
      claims: { sub: `ab-known-${i}`, amr: ['pwd'], auth_time: nowS - 300, iat: nowS - 300, exp: nowS + 3300 },
      ip: home,
      device: { fingerprint: `fp-known-${i}` },
      context: { amount: 2500, currency: 'EUR' }
    }))
  }
  return Array.from({ length: n }, (_, i) => path === 'allow'
    ? {
        action: 'profile.read',
        subject: { id: `ab-allow-${i}` },
        claims: { sub: `ab-allow-${i}`, amr: ['pwd', 'otp'], auth_time: nowS - 120, iat: nowS - 120, exp: nowS + 3480 },
        ip: home,
        device: { fingerprint: `fp-allow-${i}` }
      }
    : {
        action: 'payments.payout',
        subject: { id: `ab-step-${i}` },
        claims: { sub: `ab-step-${i}`, amr: ['pwd'], auth_time: nowS - 300, iat: nowS - 300, exp: nowS + 3300 },
        ip: home,
        device: { fingerprint: `fp-step-${i}` },
        context: { amount: 2500, currency: 'EUR' }
      })
}

const devNull = (): Logger =>
  pino({ level: 'info', base: { service: 'stepup-pdp' } }, pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }))

async function decideApp (tree: Tree, geo: GeoLookup, policiesDir: string): Promise<FastifyInstance> {
  const { set } = await tree.loadPolicySet(policiesDir)
  const app = await tree.buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new tree.PolicyHolder(set),
    geo,
    history: tree.createMemoryHistoryStore({ maxSubjects: 100_000 }),
    logger: devNull()
  })
  await app.ready()
  return app
}

/** The bare route: the service's Fastify options, the contract's schemas and validator, a canned answer. */
export async function bareApp (answer: unknown): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify(fastifyOptions(devNull()) as FastifyServerOptions)
  app.post('/decide', {
    schema: { body: contract.decideRequestSchema, response: { 200: contract.decisionSchema } },
    validatorCompiler: () => contract.decideBodyValidator
  }, async () => answer)
  await app.ready()
  return app
}

interface Path { name: string, app: FastifyInstance, bodies: contract.DecideBody[], expect: string }

/** CPU time (user + system) per request of one batch, µs. */
async function batch (p: Path, n: number): Promise<number> {
  const before = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const res = await p.app.inject({ method: 'POST', url: '/decide', payload: p.bodies[i % p.bodies.length]! })
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

export interface PathsResult {
  batch: number
  rounds: number
  paths: Array<{ path: string, usMedian: number, usQ1: number, usQ3: number }>
  ratios: Record<string, number>
}

export async function comparePaths (o: { geo: GeoLookup, policiesDir: string, batch: number, rounds: number, nowS: number, trees?: Tree[], only?: Set<string>, knownDevice?: boolean }): Promise<PathsResult> {
  const paths: Path[] = []
  for (const tree of [thisTree, ...(o.trees ?? [])]) {
    const app = await decideApp(tree, o.geo, tree.policiesDir ?? o.policiesDir)
    const suffix = tree.label === '' ? '' : ` (${tree.label})`
    paths.push({ name: `allow${suffix}`, app, bodies: pathBodies('allow', o.nowS), expect: 'allow' })
    paths.push({ name: `step_up${suffix}`, app, bodies: pathBodies('step_up', o.nowS), expect: 'step_up' })
    if (o.knownDevice === true) {
      const bodies = pathBodies('step_up_known', o.nowS)
      // Teach each subject its device and home country with a strong session on a routine action.
      for (const b of bodies) {
        await app.inject({ method: 'POST', url: '/decide', payload: { ...b, action: 'profile.read', context: {}, claims: { ...b.claims, amr: ['pwd', 'otp'] } } })
      }
      paths.push({ name: `step_up known device${suffix}`, app, bodies, expect: 'step_up' })
    }
  }
  // Learn the allow path's devices and locations; check each path answers what it is named after.
  for (const p of paths) {
    for (const body of p.bodies) await p.app.inject({ method: 'POST', url: '/decide', payload: body })
    const decision = (await p.app.inject({ method: 'POST', url: '/decide', payload: p.bodies[0]! })).json<{ decision: string }>().decision
    if (decision !== p.expect) throw new Error(`${p.name}: answers ${decision}, expected ${p.expect}`)
  }
  const answer = (await paths[1]!.app.inject({ method: 'POST', url: '/decide', payload: paths[1]!.bodies[0]! })).json()
  paths.push({ name: 'bare', app: await bareApp(answer), bodies: paths[1]!.bodies, expect: 'step_up' })
  const measured = o.only ? paths.filter(p => o.only!.has(p.name)) : paths

  // Warm-up, then rounds in alternating order (forward, backward): no path always follows another.
  for (const p of measured) await batch(p, o.batch)
  const samples = new Map(measured.map(p => [p.name, [] as number[]]))
  for (let r = 0; r < o.rounds; r++) {
    for (const p of r % 2 === 0 ? measured : [...measured].reverse()) samples.get(p.name)!.push(await batch(p, o.batch))
  }
  for (const p of new Set(paths.map(x => x.app))) await p.close()

  const summary = measured.map(p => {
    const xs = samples.get(p.name)!
    return { path: p.name, usMedian: quantile(xs, 0.5), usQ1: quantile(xs, 0.25), usQ3: quantile(xs, 0.75) }
  })
  const med = (name: string): number | undefined => summary.find(s => s.path === name)?.usMedian
  const ratios: Record<string, number> = {}
  const ratio = (a: string, b: string): void => {
    const x = med(a)
    const y = med(b)
    if (x !== undefined && y !== undefined) ratios[`${a} / ${b}`] = x / y
  }
  ratio('step_up', 'allow')
  ratio('step_up known device', 'allow')
  ratio('allow', 'bare')
  ratio('step_up', 'bare')
  for (const t of o.trees ?? []) {
    ratio(`step_up (${t.label})`, `allow (${t.label})`)
    ratio(`step_up known device (${t.label})`, `allow (${t.label})`)
    ratio('allow', `allow (${t.label})`)
    ratio('step_up', `step_up (${t.label})`)
  }
  return { batch: o.batch, rounds: o.rounds, paths: summary, ratios }
}

export function formatPaths (r: PathsResult): string[] {
  return [
    `in-process A/B: ${r.rounds} rounds x ${r.batch} requests per path, CPU µs per request (median [Q1–Q3])`,
    ...r.paths.map(s => `  ${s.path.padEnd(22)} ${s.usMedian.toFixed(1).padStart(7)}  [${s.usQ1.toFixed(1)}–${s.usQ3.toFixed(1)}]`),
    ...Object.entries(r.ratios).map(([k, v]) => `  ${k.padEnd(40)} ${v.toFixed(3)}`)
  ]
}

/**
 * The soak's load: an open-loop generator (a fixed offered rate, whatever the answers take) and a
 * closed-loop one (as fast as N connections go) that measures the maximum rate. Every answer is
 * classified for the soak's counts: 5xx, fail-open (an `allow` where the soak policy must step
 * up), degraded (a reason saying the history was unavailable), latency.
 */
import { Agent, request as httpRequest } from 'node:http'
import { randomUUID } from 'node:crypto'

/** The policy folder the soak serves: each request kind has one right answer while the store works. */
export const SOAK_POLICY = `
policies:
  - id: soak-new-device-payout
    description: A device never seen must step up to a security key; an allow is a fail-open.
    actions: [soak.payout]
    when:
      - newDevice: { days: 30 }
    require: { aal: 3 }
  - id: soak-view-new-device
    description: Routine traffic that reads and learns history (allowed with a two-factor session).
    actions: [soak.view]
    when:
      - newDevice: { days: 30 }
    require: { aal: 2 }
  - id: soak-once
    description: Every transfer needs its own authentication; a replay must step up.
    actions: [soak.transfer]
    require: { aal: 2, maxAge: 0 }
`

export type Kind = 'probe' | 'view' | 'once' | 'replay'

export interface Sample {
  /** Start, ms since the soak began. */
  at: number
  ms: number
  kind: Kind
  /** HTTP status, or 0 for a transport error / client timeout. */
  status: number
  decision?: string
  degraded: boolean
}

const LONDON = '62.252.0.1'
const SUBJECTS = 5000

const rnd = (n: number): number => Math.floor(Math.random() * n)

function body (kind: Kind, nowS: number, subject?: string, authTime?: number): Record<string, unknown> {
  switch (kind) {
    case 'probe': {
      const id = `u${rnd(SUBJECTS)}`
      return { action: 'soak.payout', subject: { id }, claims: { sub: id, amr: ['pwd', 'otp'], auth_time: nowS - 60 }, ip: LONDON, device: { fingerprint: `never-seen-${randomUUID()}` } }
    }
    case 'view': {
      const id = `u${rnd(SUBJECTS)}`
      return { action: 'soak.view', subject: { id }, claims: { sub: id, amr: ['pwd', 'otp'], auth_time: nowS - 60 }, ip: LONDON, device: { fingerprint: `${id}-device-${rnd(3)}` } }
    }
    case 'once':
    case 'replay':
      return { action: 'soak.transfer', subject: { id: subject }, claims: { sub: subject, amr: ['pwd', 'otp'], auth_time: authTime }, ip: LONDON }
  }
}

export interface Target { port: number, agent: Agent }

export const target = (port: number, sockets = 64): Target =>
  ({ port, agent: new Agent({ keepAlive: true, maxSockets: sockets }) })

interface Answer { status: number, decision?: string, degraded: boolean }

/** One POST /decide; never rejects (a transport error is status 0). */
export function post (t: Target, payload: Record<string, unknown>, timeoutMs = 5000): Promise<Answer> {
  return new Promise(resolve => {
    const data = JSON.stringify(payload)
    const req = httpRequest({
      host: '127.0.0.1',
      port: t.port,
      method: 'POST',
      path: '/decide',
      agent: t.agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      timeout: timeoutMs
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let decision: string | undefined
        let degraded = false
        if (res.statusCode === 200) {
          try {
            const json = JSON.parse(text) as { decision?: string, reasons?: Array<{ detail?: string }> }
            decision = json.decision
            degraded = (json.reasons ?? []).some(r => /unavailable/.test(r.detail ?? ''))
          } catch { /* counted by status */ }
        }
        resolve({ status: res.statusCode ?? 0, ...(decision === undefined ? {} : { decision }), degraded })
      })
      res.on('error', () => resolve({ status: 0, degraded: false }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve({ status: 0, degraded: false }))
    req.end(data)
  })
}

/** Sends one unit of the soak's mix: 50 % probes, 40 % routine views, 10 % once-only pairs. */
async function unit (t: Target, epoch: number, record: (s: Sample) => void): Promise<void> {
  const roll = Math.random()
  const started = performance.now()
  const at = Date.now() - epoch
  const nowS = Math.floor(Date.now() / 1000)
  if (roll < 0.9) {
    const kind: Kind = roll < 0.5 ? 'probe' : 'view'
    const a = await post(t, body(kind, nowS))
    record({ at, ms: performance.now() - started, kind, ...a })
    return
  }
  // A once-only authentication, then the same one again: the second must never be allowed.
  const subject = `once-${randomUUID()}`
  const first = await post(t, body('once', nowS, subject, nowS))
  record({ at, ms: performance.now() - started, kind: 'once', ...first })
  if (first.decision !== 'allow') return
  const again = performance.now()
  const second = await post(t, body('replay', nowS, subject, nowS))
  record({ at: Date.now() - epoch, ms: performance.now() - again, kind: 'replay', ...second })
}

/** Is this answer a fail-open? (probe and replay answers must never be `allow`). */
export const failOpen = (s: Sample): boolean => (s.kind === 'probe' || s.kind === 'replay') && s.decision === 'allow'

export interface OpenLoop {
  stop: () => Promise<void>
  /** Units that could not start because `maxInFlight` were already waiting (the service fell behind). */
  shed: () => number
}

/** Offers `rate` units a second until stopped, at most `maxInFlight` at once. */
export function openLoop (t: Target, rate: number, epoch: number, record: (s: Sample) => void, maxInFlight = 256): OpenLoop {
  let inFlight = 0
  let shed = 0
  let started = 0
  const begin = performance.now()
  const pending = new Set<Promise<void>>()
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - begin) / 1000) * rate) - started
    for (let i = 0; i < due; i++) {
      started++
      if (inFlight >= maxInFlight) { shed++; continue }
      inFlight++
      const p = unit(t, epoch, record).finally(() => { inFlight--; pending.delete(p) })
      pending.add(p)
    }
  }, 5)
  return {
    stop: async () => { clearInterval(timer); await Promise.all([...pending]) },
    shed: () => shed
  }
}

/** The rate `connections` callers reach, each sending the next unit as soon as the last ends. */
export async function closedLoop (t: Target, seconds: number, connections: number, epoch: number, record: (s: Sample) => void): Promise<{ unitsPerSecond: number, requestsPerSecond: number }> {
  const until = performance.now() + seconds * 1000
  let units = 0
  let requests = 0
  const count = (s: Sample): void => { requests++; record(s) }
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      await unit(t, epoch, count)
      units++
    }
  }
  const begin = performance.now()
  await Promise.all(Array.from({ length: connections }, worker))
  const elapsed = (performance.now() - begin) / 1000
  return { unitsPerSecond: units / elapsed, requestsPerSecond: requests / elapsed }
}

/** The q-quantile (0..1) of a list of numbers; 0 when empty. */
export function quantile (values: number[], q: number): number {
  if (values.length === 0) return 0
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

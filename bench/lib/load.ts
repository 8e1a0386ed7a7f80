/**
 * autocannon, driven programmatically. Two modes:
 *  - closed loop: `connections` keep-alive connections, each sending its next request when the
 *    previous answer arrives (pipelining 1);
 *  - fixed rate: autocannon's `overallRate`, split per connection. Stock autocannon enforces it
 *    as a per-second budget that each connection spends back to back at the top of every second
 *    (a 50-connection burst, then silence), so `paced: true` spreads each connection's budget
 *    evenly instead (one request every connections/rate seconds, random phase); a request held
 *    back because its connection was still waiting for the previous answer is timed from when
 *    it was due, not from when it went out (no coordinated omission).
 * Latencies are recorded here, in microseconds (autocannon's own histogram has 1 ms resolution).
 */
import type { EventEmitter } from 'node:events'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import autocannon from 'autocannon'

export interface BenchRequest { method: 'POST', path: string, headers: Record<string, string>, body: string }

export interface LoadOptions {
  url: string
  /** Each connection gets its own slice of these, so connections do not send the same sequence. */
  requests: BenchRequest[]
  connections: number
  seconds: number
  /** Requests per second for the whole run; 0 = closed loop. */
  rate?: number
  paced?: boolean
  /** Stop after this many responses instead of after `seconds`. */
  amount?: number
}

export interface LoadResult {
  requests: number
  seconds: number
  rps: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
  errors: number
  timeouts: number
  non2xx: number
  bytesPerResponse: number
  /** Paced runs: p99 timed from when the request was actually written (not from when it was due). */
  p99FromSend: number
  /** The load generator's own event-loop delay, p99 and max ms (a busy generator delays sends and reads). */
  generatorLagP99: number
  generatorLagMax: number
  /** Raw latencies (ms), for merging rounds. */
  latencies: Float64Array
}

interface ClientLike {
  _doRequest: () => void
  destroyed: boolean
  reqsMadeThisSecond: number
  rate: number
  setRequests: (r: BenchRequest[]) => void
  __due?: number
}

class Recorder {
  values = new Float64Array(1 << 16)
  n = 0
  add (v: number): void {
    if (this.n === this.values.length) {
      const next = new Float64Array(this.values.length * 2)
      next.set(this.values)
      this.values = next
    }
    this.values[this.n++] = v
  }

  done (): Float64Array { return this.values.slice(0, this.n) }
}

export function summarize (latencies: Float64Array): Pick<LoadResult, 'p50' | 'p90' | 'p99' | 'p999' | 'max' | 'mean'> {
  const sorted = Float64Array.from(latencies).sort()
  const at = (q: number): number => sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
  let sum = 0
  for (const v of sorted) sum += v
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: sorted[sorted.length - 1] ?? NaN, mean: sum / sorted.length }
}

export async function load (o: LoadOptions): Promise<LoadResult> {
  const rec = new Recorder()
  const fromSend = new Recorder()
  const lag = monitorEventLoopDelay({ resolution: 1 })
  lag.enable()
  let clientIndex = 0
  const slice = Math.max(1, Math.floor(o.requests.length / o.connections))
  const perConnection = o.rate ? o.rate / o.connections : 0

  const setupClient = (c: unknown): void => {
    const client = c as ClientLike
    const i = clientIndex++ % o.connections
    const mine = o.requests.length >= o.connections ? o.requests.slice(i * slice, (i + 1) * slice) : o.requests
    client.setRequests(mine)
    const send = client._doRequest.bind(client)
    if (o.paced && perConnection > 0) {
      const interval = 1000 / perConnection
      let due = performance.now() + Math.random() * interval
      let timer: NodeJS.Timeout | undefined
      let fromTimer = false
      client._doRequest = () => {
        if (client.destroyed) return
        const now = performance.now()
        if (now + 0.1 >= due) {
          // Held back by the previous answer (the connection was busy when this one was due):
          // time it from when it was due, so a slow server is charged for the wait. Sent by our
          // own timer: time it from now (a late timer is the load generator's, ≤ ~1 ms).
          client.__due = fromTimer ? now : Math.min(due, now)
          fromTimer = false
          // Never bank more than a second of backlog after a stall.
          due = Math.max(due + interval, now - 1000)
          client.reqsMadeThisSecond = 0 // bypass autocannon's per-second budget
          send()
        } else {
          if (timer) clearTimeout(timer)
          timer = setTimeout(() => { timer = undefined; fromTimer = true; client._doRequest() }, due - now)
        }
      }
    }
  }

  const started = performance.now()
  let firstResponse = 0
  let lastResponse = 0
  let badStatus = 0
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    pipelining: 1,
    ...(o.amount ? { amount: o.amount } : { duration: o.seconds }),
    ...(o.rate ? { overallRate: Math.round(o.rate) } : {}),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: o.requests[0]!.body,
    setupClient: setupClient as never,
    timeout: 10
  }) as unknown as EventEmitter & Promise<autocannon.Result>
  instance.on('response', (c: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    const client = c as ClientLike
    const now = performance.now()
    if (firstResponse === 0) firstResponse = now
    lastResponse = now
    // Closed loop: autocannon's own timing (hrtime, from the write); paced: from when it was due.
    rec.add(o.paced && perConnection > 0 && client.__due !== undefined ? now - client.__due : responseTime)
    fromSend.add(responseTime)
    if (statusCode >= 300) badStatus++
  })
  const result = await instance
  lag.disable()
  const elapsed = o.amount ? (lastResponse - started) / 1000 : result.duration
  const latencies = rec.done()
  return {
    requests: latencies.length,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    ...summarize(latencies),
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: badStatus,
    bytesPerResponse: result.throughput.total / Math.max(1, result.requests.total),
    p99FromSend: summarize(fromSend.done()).p99,
    generatorLagP99: lag.percentile(99) / 1e6,
    generatorLagMax: lag.max / 1e6,
    latencies
  }
}

/** Several rounds of the same scenario, merged: requests / total time, percentiles of all latencies. */
export function merge (parts: LoadResult[]): LoadResult {
  const n = parts.reduce((s, p) => s + p.latencies.length, 0)
  const all = new Float64Array(n)
  let o = 0
  for (const p of parts) { all.set(p.latencies, o); o += p.latencies.length }
  const seconds = parts.reduce((s, p) => s + p.seconds, 0)
  const requests = parts.reduce((s, p) => s + p.requests, 0)
  return {
    requests,
    seconds,
    rps: requests / seconds,
    ...summarize(all),
    errors: parts.reduce((s, p) => s + p.errors, 0),
    timeouts: parts.reduce((s, p) => s + p.timeouts, 0),
    non2xx: parts.reduce((s, p) => s + p.non2xx, 0),
    bytesPerResponse: parts.reduce((s, p) => s + p.bytesPerResponse * p.requests, 0) / Math.max(1, requests),
    p99FromSend: Math.max(...parts.map(p => p.p99FromSend)),
    generatorLagP99: Math.max(...parts.map(p => p.generatorLagP99)),
    generatorLagMax: Math.max(...parts.map(p => p.generatorLagMax)),
    latencies: all
  }
}

export const toRequests = (bodies: unknown[], path: string): BenchRequest[] =>
  bodies.map(b => ({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }))

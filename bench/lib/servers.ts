/**
 * Servers under test, each in its own process (bench/server.ts), and load runs against them
 * that also read the server's own CPU time and how busy the rest of the machine was.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { ServerSpec } from '../server.js'
import { cpuWindow, track } from './cpu.js'
import { root, script } from './paths.js'
import { load, merge, type BenchRequest, type LoadResult } from './load.js'
import type { Run } from './report.js'

export interface LoadParams { connections: number, warmupS: number, runS: number, rounds: number }
export interface CpuTimes { user: number, system: number, loopDelayMaxMs: number, loopDelayP99Ms: number }
export interface Server { name: string, url: string, child: ChildProcess, startupMs: number, close: () => Promise<void>, cpu: () => Promise<CpuTimes> }

let log: (msg: string) => void = msg => console.log(msg)
export const setLog = (fn: (msg: string) => void): void => { log = fn }

/** Starts bench/server.ts with `spec`; with `profileDir`, under --cpu-prof into that folder. */
export async function startServer (name: string, spec: ServerSpec, profileDir?: string): Promise<Server> {
  const { file, execArgv } = script('server')
  if (profileDir !== undefined) execArgv.push('--cpu-prof', '--cpu-prof-dir', profileDir)
  const child = fork(file, [JSON.stringify(spec)], { cwd: root, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  track(child.pid)
  const ready = await new Promise<{ port: number, startupMs: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no ready message in 120 s`)), 120_000)
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`${name}: exited with ${code} before ready`)) })
    child.once('message', (m: { type: string, port: number, startupMs: number }) => { clearTimeout(timer); resolve(m) })
  })
  child.removeAllListeners('exit')
  return {
    name,
    url: `http://127.0.0.1:${ready.port}`,
    child,
    startupMs: ready.startupMs,
    close: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
      child.send({ type: 'close' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
    cpu: () => new Promise<CpuTimes>(resolve => {
      child.once('message', (m: { usage: { user: number, system: number }, loopDelayMaxMs: number, loopDelayP99Ms: number }) =>
        resolve({ ...m.usage, loopDelayMaxMs: m.loopDelayMaxMs, loopDelayP99Ms: m.loopDelayP99Ms }))
      child.send({ type: 'cpu' })
    })
  }
}

export type Measured = LoadResult & { cpuUsPerRequest: number, sysUsPerRequest: number, machineCpu: number, otherCpu: number, serverLagP99: number, serverLagMax: number }

/** A load run on `server` that also reports the server's CPU time per request. */
export async function measure (server: Server, requests: BenchRequest[], seconds: number, p: Pick<LoadParams, 'connections'>, extra: { rate?: number, paced?: boolean } = {}): Promise<Measured> {
  const before = await server.cpu()
  const end = cpuWindow()
  const r = await load({ url: `${server.url}/decide`, requests, connections: p.connections, seconds, ...extra })
  const share = end()
  const after = await server.cpu()
  if (r.non2xx > 0 || r.errors > 0) log(`  ! ${server.name}: ${r.non2xx} non-2xx, ${r.errors} errors`)
  if (share.other > 0.25) log(`  ! ${server.name}: other processes used ${share.other.toFixed(2)} cores during the run`)
  const n = Math.max(1, r.requests)
  return {
    ...r,
    cpuUsPerRequest: (after.user + after.system - before.user - before.system) / n,
    sysUsPerRequest: (after.system - before.system) / n,
    machineCpu: share.machine,
    otherCpu: share.other,
    serverLagP99: after.loopDelayP99Ms,
    serverLagMax: after.loopDelayMaxMs
  }
}

export const warm = (server: Server, requests: BenchRequest[], p: Pick<LoadParams, 'connections' | 'warmupS'>): Promise<LoadResult> =>
  load({ url: `${server.url}/decide`, requests, connections: p.connections, seconds: p.warmupS })

export const strip = (r: Measured): Run => {
  const { latencies: _latencies, ...rest } = r
  return rest
}

/** Interleaved rounds (A, B, C, A, B, C…) so background noise hits every scenario alike. */
export async function closedLoop (scenarios: Array<{ server: Server, requests: BenchRequest[] }>, p: LoadParams): Promise<Map<string, Run>> {
  const parts = new Map<string, Measured[]>()
  for (let round = 0; round < p.rounds; round++) {
    for (const { server, requests } of scenarios) {
      const r = await measure(server, requests, p.runS / p.rounds, p)
      const list = parts.get(server.name) ?? []
      list.push(r)
      parts.set(server.name, list)
      log(`  ${server.name} round ${round + 1}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, server CPU ${r.cpuUsPerRequest.toFixed(0)} µs/req (${r.sysUsPerRequest.toFixed(0)} system)`)
    }
  }
  const out = new Map<string, Run>()
  for (const [name, list] of parts) {
    const m = merge(list)
    const perRequest = (k: 'cpuUsPerRequest' | 'sysUsPerRequest'): number => list.reduce((s, x) => s + x[k] * x.requests, 0) / Math.max(1, m.requests)
    const weighted = (k: 'machineCpu' | 'otherCpu'): number => list.reduce((s, x) => s + x[k] * x.seconds, 0) / m.seconds
    out.set(name, strip({
      ...m,
      cpuUsPerRequest: perRequest('cpuUsPerRequest'),
      sysUsPerRequest: perRequest('sysUsPerRequest'),
      machineCpu: weighted('machineCpu'),
      otherCpu: weighted('otherCpu'),
      serverLagP99: Math.max(...list.map(x => x.serverLagP99)),
      serverLagMax: Math.max(...list.map(x => x.serverLagMax))
    }))
  }
  return out
}

/**
 * A real redis-server for the benchmark, on a free port (never 6379), killed when the run ends.
 * The start logic follows test/helpers/redis.ts (copied, so the benchmark does not depend on
 * test helpers that change under it). Also: INFO parsing and a bulk loader over `redis-cli --pipe`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { connect, createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

export const redisAvailable = (): boolean =>
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
  && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0

const live = new Set<ChildProcess>()
process.on('exit', () => { for (const p of live) p.kill('SIGKILL') })

const portFree = (port: number): Promise<boolean> => new Promise(resolve => {
  const server = createServer()
  server.once('error', () => resolve(false))
  server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
})

async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000)
    if (port === 6379) continue
    if (await portFree(port)) return port
  }
  throw new Error('no free port found')
}

const ping = (port: number): Promise<boolean> => new Promise(resolve => {
  const socket = connect(port, '127.0.0.1')
  let data = ''
  const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
  socket.setTimeout(500, () => done(false))
  socket.once('error', () => done(false))
  socket.once('connect', () => socket.write('PING\r\n'))
  socket.on('data', chunk => { data += chunk.toString(); if (data.includes('\r\n')) done(data.startsWith('+PONG')) })
})

export interface BenchRedis {
  port: number
  url: string
  pid: number
  /** A plain client for the benchmark's own commands (INFO, CONFIG, fills). */
  admin: Redis
  stop: () => Promise<void>
}

export async function startRedis (): Promise<BenchRedis> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
    { stdio: ['ignore', 'ignore', 'pipe'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  child.stderr?.resume()
  const until = Date.now() + 10_000
  while (!(await ping(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`)
    if (Date.now() > until) throw new Error(`redis-server on port ${port} did not answer`)
    await sleep(50)
  }
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1 })
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    admin,
    stop: async () => {
      admin.disconnect()
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
      child.kill('SIGKILL')
      await exited
    }
  }
}

/** `INFO <section>` as a flat map of field -> value. */
export async function info (client: Redis, section: string): Promise<Record<string, string>> {
  const text = await client.info(section)
  const out: Record<string, string> = {}
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

/** `INFO commandstats` as command -> calls. */
export async function commandCalls (client: Redis): Promise<Record<string, number>> {
  const raw = await info(client, 'commandstats')
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(raw)) {
    const m = /calls=(\d+)/.exec(v)
    if (k.startsWith('cmdstat_') && m) out[k.slice('cmdstat_'.length)] = Number(m[1])
  }
  return out
}

/** Encodes one command in RESP. */
export function resp (args: string[]): string {
  let s = `*${args.length}\r\n`
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`
  return s
}

/**
 * Streams commands into `redis-cli --pipe`: `produce(i)` returns the RESP text of item i.
 * Resolves with the number of replies redis-cli counted, and rejects when any reply is an error.
 */
export async function pipeFill (port: number, from: number, to: number, produce: (i: number) => string): Promise<number> {
  const child = spawn('redis-cli', ['-p', String(port), '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { out += c.toString() })
  const exited = new Promise<number>(resolve => child.once('exit', code => resolve(code ?? 1)))
  const BATCH = 2000
  for (let i = from; i < to;) {
    let chunk = ''
    const end = Math.min(to, i + BATCH)
    for (; i < end; i++) chunk += produce(i)
    if (!child.stdin.write(chunk)) await new Promise<void>(resolve => child.stdin.once('drain', () => resolve()))
  }
  child.stdin.end()
  const code = await exited
  const m = /errors:\s*(\d+),\s*replies:\s*(\d+)/.exec(out)
  if (code !== 0 || !m || Number(m[1]) !== 0) throw new Error(`redis-cli --pipe failed (exit ${code}): ${out.trim()}`)
  return Number(m[2])
}

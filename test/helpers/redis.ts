/**
 * Real Redis servers for tests, each on its own free port (never the shared 6379), killed on
 * teardown and on process exit. Without `redis-server` on PATH the tests that need it skip
 * loudly, except under CI=true where that is a failure.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { RedisNode } from '../../src/config.js'

const run = promisify(execFile)

const onPath = (cmd: string): boolean => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0

/** Is `redis-server` on PATH? (`redis-cli` is needed too, for the cluster.) */
export const redisAvailable: boolean = onPath('redis-server')
const redisCliAvailable: boolean = onPath('redis-cli')

/** The bits of a tap `Test` these helpers use. */
export interface TestLike {
  teardown: (fn: () => unknown) => void
  plan: (n: number, comment?: string) => void
  fail: (message: string) => boolean
}

/**
 * Call first in a file that needs Redis: true when it may go on. Otherwise the file skips with
 * a loud notice, or, under CI=true, fails.
 */
export function requireRedis (t: TestLike, options: { cluster?: boolean } = {}): boolean {
  const missing = [
    ...(redisAvailable ? [] : ['redis-server']),
    ...(options.cluster === true && !redisCliAvailable ? ['redis-cli'] : [])
  ]
  if (missing.length === 0) return true
  const what = `${missing.join(' and ')} not found on PATH`
  if (process.env.CI === 'true') {
    t.fail(`${what}: Redis tests are required under CI=true`)
    return false
  }
  const banner = '!'.repeat(78)
  console.error(`\n${banner}\n!!! SKIPPING REDIS TESTS: ${what}. Install Redis to run them (CI fails instead).\n${banner}\n`)
  t.plan(0, `skip: ${what}`)
  return false
}

// ---- processes ----------------------------------------------------------------------------

const live = new Set<ChildProcess>()
const killAll = (): void => { for (const p of live) p.kill('SIGKILL') }
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  // Kill the servers, then let the signal do what it would have done.
  process.once(signal, () => { killAll(); process.kill(process.pid, signal) })
}

function spawnServer (args: string[], cwd?: string): ChildProcess {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'], ...(cwd === undefined ? {} : { cwd }) })
  live.add(child)
  child.once('exit', () => live.delete(child))
  child.stderr?.resume()
  return child
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.kill('SIGKILL')
  await exited
}

const portFree = (port: number): Promise<boolean> => new Promise(resolve => {
  const server = createServer()
  server.once('error', () => resolve(false))
  server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
})

const taken = new Set<number>()

/** A free port, and with `bus` also port + 10000 free (a cluster node's bus port). */
async function freePort (bus = false): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000)
    if (port === 6379 || taken.has(port)) continue
    if (await portFree(port) && (!bus || await portFree(port + 10000))) {
      taken.add(port)
      return port
    }
  }
  throw new Error('no free port found')
}

/** Sends one inline command; resolves with the first reply line, or undefined. */
const ask = (port: number, command: string, timeoutMs = 500): Promise<string | undefined> => new Promise(resolve => {
  const socket = connect(port, '127.0.0.1')
  let data = ''
  const done = (value: string | undefined): void => { socket.destroy(); resolve(value) }
  socket.setTimeout(timeoutMs, () => done(undefined))
  socket.once('error', () => done(undefined))
  socket.once('connect', () => socket.write(`${command}\r\n`))
  socket.on('data', chunk => {
    data += chunk.toString('utf8')
    if (data.includes('\r\n')) done(data.split('\r\n')[0])
  })
})

async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

const answersPing = async (port: number): Promise<boolean> => (await ask(port, 'PING')) === '+PONG'

const baseArgs = (port: number): string[] =>
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no']

export interface RedisServer {
  url: string
  port: number
  stop: () => Promise<void>
  /** Stops the server (if running) and starts a new, empty one on the same port. */
  restart: () => Promise<void>
  /** SIGSTOP / SIGCONT: the server keeps its connections but stops answering (a hung Redis). */
  pause: () => void
  resume: () => void
}

/** Starts a standalone redis-server on a free port; stopped on `t` teardown when given. */
export async function startRedis (t?: Pick<TestLike, 'teardown'>): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    child = spawnServer(baseArgs(port))
    const started = child
    await waitFor(`redis-server on port ${port}`, async () => {
      if (started.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${started.exitCode}`)
      return answersPing(port)
    })
  }
  const stop = async (): Promise<void> => { if (child) await kill(child) }
  await start()
  t?.teardown(stop)
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    restart: async () => { await stop(); await start() },
    pause: () => { child?.kill('SIGSTOP') },
    resume: () => { child?.kill('SIGCONT') }
  }
}

export interface RedisClusterServers {
  nodes: RedisNode[]
  stop: () => Promise<void>
  /** Kills one node (by its index in `nodes`), as in a crash. */
  stopNode: (index: number) => Promise<void>
}

/** Starts a 3-master Redis Cluster (no replicas) on free ports; stopped on `t` teardown when given. */
export async function startRedisCluster (t?: Pick<TestLike, 'teardown'>): Promise<RedisClusterServers> {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-redis-cluster-'))
  const children: ChildProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(kill))
    rmSync(dir, { recursive: true, force: true })
  }
  t?.teardown(stop)
  try {
    const ports: number[] = []
    for (let i = 0; i < 3; i++) ports.push(await freePort(true))
    for (const port of ports) {
      children.push(spawnServer([
        ...baseArgs(port),
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000',
        '--dir', dir
      ], dir))
    }
    for (const port of ports) await waitFor(`cluster node on port ${port}`, () => answersPing(port))
    await run('redis-cli', [
      '--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'
    ], { timeout: 30_000 })
    for (const port of ports) {
      await waitFor(`cluster_state:ok on port ${port}`, async () => {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'], { timeout: 2000 })
        return stdout.includes('cluster_state:ok')
      }, 30_000)
    }
    return {
      nodes: ports.map(port => ({ host: '127.0.0.1', port })),
      stop,
      stopNode: async (index: number) => { const child = children[index]; if (child) await kill(child) }
    }
  } catch (err) {
    await stop()
    throw err
  }
}

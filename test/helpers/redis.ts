/**
 * Real Redis servers for tests, each on its own free port (never the shared 6379), killed on
 * teardown and on process exit. Without `redis-server` on PATH the tests that need it skip
 * loudly, except under CI=true where that is a failure.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { RedisNode } from '../../src/config.js'
import type { HistoryStore } from '../../src/signals/history.js'
import { onPath, requirePrograms, type TestLike } from './tools.js'

const run = promisify(execFile)

/** Is `redis-server` on PATH? (`redis-cli` is needed too, for the cluster.) */
export const redisAvailable: boolean = onPath('redis-server')
const redisCliAvailable: boolean = onPath('redis-cli')

/**
 * Call first in a file that needs Redis: true when it may go on. Otherwise its Redis tests skip
 * with a loud notice, or, under CI=true, fail.
 */
export function requireRedis (t: TestLike, options: { cluster?: boolean } = {}): boolean {
  const missing = [
    ...(redisAvailable ? [] : ['redis-server']),
    ...(options.cluster === true && !redisCliAvailable ? ['redis-cli'] : [])
  ]
  return requirePrograms(t, 'Redis', missing, 'Install Redis')
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

/**
 * Sends one command over RESP and resolves with the reply printed as `redis-cli` prints it
 * when not on a terminal: every element of an array (nested ones flattened) on its own line,
 * a status or error as its text. Rejects when the server cannot be reached or does not answer
 * within `timeoutMs`. (A socket instead of a redis-cli process per call: the wait loops poll
 * every 50 ms.)
 */
export const command = (port: number, args: string[], timeoutMs = 2000): Promise<string> => new Promise((resolve, reject) => {
  const socket = connect(port, '127.0.0.1')
  let data = Buffer.alloc(0)
  const fail = (err: Error): void => { socket.destroy(); reject(err) }
  socket.setTimeout(timeoutMs, () => fail(new Error(`redis on port ${port}: no answer to ${args.join(' ')} within ${timeoutMs} ms`)))
  socket.once('error', fail)
  socket.once('close', () => reject(new Error(`redis on port ${port}: connection closed before the answer to ${args.join(' ')}`)))
  socket.once('connect', () => {
    socket.write(`*${args.length}\r\n` + args.map(a => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
  })
  socket.on('data', chunk => {
    data = Buffer.concat([data, chunk])
    const parsed = parseReply(data, 0)
    if (parsed === undefined) return // incomplete: wait for more
    socket.destroy()
    resolve(parsed.lines.map(l => l + '\n').join(''))
  })
})

/** One RESP reply at `at`: its lines as redis-cli prints them, and where it ends; undefined when incomplete. */
function parseReply (data: Buffer, at: number): { lines: string[], end: number } | undefined {
  const eol = data.indexOf('\r\n', at)
  if (eol < 0) return undefined
  const type = String.fromCharCode(data[at]!)
  const head = data.toString('utf8', at + 1, eol)
  if (type === '+' || type === '-' || type === ':') return { lines: [head], end: eol + 2 }
  if (type === '$') {
    const length = Number(head)
    if (length < 0) return { lines: [''], end: eol + 2 }
    if (data.length < eol + 2 + length + 2) return undefined
    return { lines: [data.toString('utf8', eol + 2, eol + 2 + length)], end: eol + 2 + length + 2 }
  }
  if (type === '*') {
    const count = Number(head)
    const lines: string[] = []
    let end = eol + 2
    for (let i = 0; i < count; i++) {
      const item = parseReply(data, end)
      if (item === undefined) return undefined
      lines.push(...item.lines)
      end = item.end
    }
    return { lines, end }
  }
  throw new Error(`unexpected RESP reply: ${data.toString('utf8', at, Math.min(data.length, at + 80))}`)
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
  /** Starts a killed node again with its cluster state (it rejoins, as a replica when it was failed over). */
  startNode: (index: number) => Promise<void>
  /** Indexes (in `nodes`) of the nodes that are masters now, as the first live node sees it. */
  masters: () => Promise<number[]>
  /** Resolves when every live node reports cluster_state:ok. */
  waitHealthy: (timeoutMs?: number) => Promise<void>
}

const clusterInfoOk = async (port: number): Promise<boolean> => {
  try {
    return (await command(port, ['cluster', 'info'])).includes('cluster_state:ok')
  } catch {
    return false
  }
}

/**
 * Starts a 3-master Redis Cluster on free ports, with `replicas` replicas per master (default 0);
 * stopped on `t` teardown when given. With replicas, killing a master fails over to its replica
 * within a few seconds (node timeout 2 s).
 */
export async function startRedisCluster (t?: Pick<TestLike, 'teardown'>, options: { replicas?: number } = {}): Promise<RedisClusterServers> {
  const replicas = options.replicas ?? 0
  const dir = mkdtempSync(join(tmpdir(), 'stepup-redis-cluster-'))
  const children: Array<ChildProcess | undefined> = []
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(c => c === undefined ? undefined : kill(c)))
    rmSync(dir, { recursive: true, force: true })
  }
  t?.teardown(stop)
  try {
    const ports: number[] = []
    for (let i = 0; i < 3 * (1 + replicas); i++) ports.push(await freePort(true))
    const startNode = async (index: number): Promise<void> => {
      const port = ports[index]!
      children[index] = spawnServer([
        ...baseArgs(port),
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000',
        '--dir', dir
      ], dir)
      await waitFor(`cluster node on port ${port}`, () => answersPing(port))
    }
    for (let i = 0; i < ports.length; i++) await startNode(i)
    await run('redis-cli', [
      '--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'
    ], { timeout: 30_000 })
    const live = (): number[] => ports.filter((_p, i) => { const c = children[i]; return c !== undefined && c.exitCode === null && c.signalCode === null })
    const waitHealthy = async (timeoutMs = 30_000): Promise<void> => {
      for (const port of live()) await waitFor(`cluster_state:ok on port ${port}`, () => clusterInfoOk(port), timeoutMs)
    }
    await waitHealthy()
    if (replicas > 0) {
      // Every replica in sync before the caller kills a master.
      await waitFor('cluster replicas in sync', async () => {
        const lines = (await command(ports[0]!, ['cluster', 'nodes'])).trim().split('\n')
        return lines.filter(l => / slave /.test(l) && / connected/.test(l)).length === 3 * replicas
      }, 30_000)
    }
    return {
      nodes: ports.map(port => ({ host: '127.0.0.1', port })),
      stop,
      stopNode: async (index: number) => { const child = children[index]; if (child) await kill(child) },
      startNode,
      masters: async () => {
        const port = live()[0]
        if (port === undefined) return []
        return (await command(port, ['cluster', 'nodes'])).trim().split('\n')
          .filter(l => /\bmaster\b/.test(l) && !/\bfail\b/.test(l))
          .map(l => ports.indexOf(Number(/:(\d+)@/.exec(l)?.[1])))
          .filter(i => i >= 0)
      },
      waitHealthy
    }
  } catch (err) {
    await stop()
    throw err
  }
}

// ---- Sentinel -------------------------------------------------------------------------------

export interface RedisSentinelServers {
  /** The sentinels (for REDIS_SENTINELS). */
  sentinels: RedisNode[]
  /** The master name they monitor (for REDIS_SENTINEL_NAME). */
  name: string
  /** The data nodes' ports (the master first, at start). */
  dataPorts: number[]
  /** The port of the master the sentinels announce now. */
  masterPort: () => Promise<number>
  /** `SENTINEL FAILOVER`: promotes the replica; resolves once the sentinels announce it. */
  failover: (timeoutMs?: number) => Promise<number>
  /** Kills the current master (a crash); resolves once the sentinels announce the new one. */
  killMaster: (timeoutMs?: number) => Promise<number>
  /** Starts a killed data node again, empty; the sentinels make it a replica of the master. */
  restartDataNode: (port: number) => Promise<void>
  /** Resolves when the master has a connected replica again (ready for the next failover). */
  waitReplicated: (timeoutMs?: number) => Promise<void>
  stop: () => Promise<void>
}

/** Sends one command to a Redis server or sentinel; the reply as redis-cli prints it, or '' on failure. */
const cli = async (port: number, ...args: string[]): Promise<string> => {
  try {
    return await command(port, args)
  } catch {
    return ''
  }
}

/**
 * Starts a Redis master, one replica and three sentinels (quorum 2) on free ports; stopped on
 * `t` teardown when given. Sentinels declare a master down after 1 s.
 */
export async function startRedisSentinel (t?: Pick<TestLike, 'teardown'>, options: { name?: string } = {}): Promise<RedisSentinelServers> {
  const name = options.name ?? 'mymaster'
  const dir = mkdtempSync(join(tmpdir(), 'stepup-redis-sentinel-'))
  const data = new Map<number, ChildProcess>()
  const sentinelChildren: ChildProcess[] = []
  const stop = async (): Promise<void> => {
    await Promise.all([...sentinelChildren, ...data.values()].map(kill))
    rmSync(dir, { recursive: true, force: true })
  }
  t?.teardown(stop)
  try {
    const masterPort = await freePort()
    const replicaPort = await freePort()
    const startData = async (port: number, replicaOf?: number): Promise<void> => {
      const child = spawnServer([...baseArgs(port), '--dir', dir, ...(replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(replicaOf)])], dir)
      data.set(port, child)
      await waitFor(`redis-server on port ${port}`, async () => {
        if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`)
        return answersPing(port)
      })
    }
    await startData(masterPort)
    await startData(replicaPort, masterPort)
    await waitFor('the replica in sync', async () => (await cli(masterPort, 'info', 'replication')).includes('connected_slaves:1'))

    const sentinelPorts = [await freePort(), await freePort(), await freePort()]
    for (const port of sentinelPorts) {
      const conf = join(dir, `sentinel-${port}.conf`)
      writeFileSync(conf, [
        `port ${port}`,
        'bind 127.0.0.1',
        'protected-mode no',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        ''
      ].join('\n'))
      const child = spawnServer([conf, '--sentinel'], dir)
      sentinelChildren.push(child)
      await waitFor(`sentinel on port ${port}`, () => answersPing(port))
    }
    // Ready when every sentinel knows the replica and the two other sentinels.
    await waitFor('the sentinels to discover each other and the replica', async () => {
      for (const port of sentinelPorts) {
        const master = await cli(port, 'sentinel', 'master', name)
        const lines = master.split('\n')
        const field = (f: string): number => Number(lines[lines.indexOf(f) + 1])
        if (field('num-slaves') < 1 || field('num-other-sentinels') < 2) return false
      }
      return true
    }, 30_000)

    const currentMaster = async (): Promise<number> => {
      for (const port of sentinelPorts) {
        const out = (await cli(port, 'sentinel', 'get-master-addr-by-name', name)).trim().split('\n')
        if (out.length === 2) return Number(out[1])
      }
      throw new Error('no sentinel answers get-master-addr-by-name')
    }
    const waitNewMaster = async (old: number, timeoutMs: number): Promise<number> => {
      let now = old
      await waitFor('the sentinels to announce a new master', async () => {
        now = await currentMaster()
        if (now === old) return false
        return (await cli(now, 'role')).startsWith('master')
      }, timeoutMs)
      return now
    }
    const waitReplicated = async (timeoutMs = 30_000): Promise<void> => {
      await waitFor('the master to have a connected replica', async () => {
        const master = await currentMaster()
        const info = await cli(master, 'info', 'replication')
        if (!/connected_slaves:[1-9]/.test(info) || !/state=online/.test(info)) return false
        // The sentinels must see the replica too, or SENTINEL FAILOVER has no candidate.
        const seen = await cli(sentinelPorts[0]!, 'sentinel', 'replicas', name)
        return seen.includes('slave') && !/s_down|o_down|disconnected/.test(seen)
      }, timeoutMs)
    }
    return {
      sentinels: sentinelPorts.map(port => ({ host: '127.0.0.1', port })),
      name,
      dataPorts: [masterPort, replicaPort],
      masterPort: currentMaster,
      failover: async (timeoutMs = 30_000) => {
        const old = await currentMaster()
        const reply = await cli(sentinelPorts[0]!, 'sentinel', 'failover', name)
        if (!reply.startsWith('OK')) throw new Error(`SENTINEL FAILOVER: ${reply.trim()}`)
        return waitNewMaster(old, timeoutMs)
      },
      killMaster: async (timeoutMs = 30_000) => {
        const old = await currentMaster()
        const child = data.get(old)
        if (child) await kill(child)
        return waitNewMaster(old, timeoutMs)
      },
      restartDataNode: async (port: number) => {
        const child = data.get(port)
        if (child) await kill(child)
        await startData(port)
      },
      waitReplicated,
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Polls `check` every 50 ms until it holds or `timeoutMs` passes. */
export async function waitUntil (check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return false
}

/** A Redis history store once it answers PING (within 10 s); closed and thrown otherwise. */
export async function readyStore (store: HistoryStore): Promise<HistoryStore> {
  if (!await waitUntil(() => store.ping(), 10_000)) {
    await store.close()
    throw new Error('the Redis history store did not become ready')
  }
  return store
}

/**
 * The shared history store on Redis or Redis Cluster (docs/policies.md#history, docs/failure-rules.md).
 *
 * Key layout (namespace `keyPrefix`, default `stepup:`), with h = the first 32 hex digits of
 * sha256(`\0` for the default tenant or `t:<length>:<tenant>`, then `\0<subject>`):
 *   <ns>h:{h}             one hash per (tenant, subject); every field value is a last-seen time
 *                         in integer epoch seconds, except `l`:
 *                           d:<deviceId>   c:<country>   r:<resource>
 *                           l  -> JSON [at, latitude, longitude, accuracyKm, country|null, city|null]
 *                         EXPIRE = retention, renewed by every write.
 *   <ns>o:{h}:<authTime>  "1", SET NX EX: a consumed once-only authentication.
 * The payment state (redis-psd2.ts), under the same tag:
 *   <ns>px:{h}            hash n -> exempted payments since the last SCA, c -> their EUR cents;
 *                         EXPIRE PSD2_TTL (400 days), renewed by every counted payment, deleted
 *                         by a completed SCA.
 *   <ns>pb:{h}            sorted set: trusted payee id -> when trusted (epoch seconds); at most
 *                         PSD2_CAPS.trustedPayees (the oldest dropped); EXPIRE PSD2_TTL, renewed
 *                         by every addition.
 *   <ns>pf:{h}            list of failed step-up times (epoch seconds, ascending), at most
 *                         PSD2_CAPS.failures; EXPIRE = the lockout window, renewed by every
 *                         failure, deleted by a completed SCA.
 *   <ns>ps:{h}:<authTime>:<txHash>  "1", SET NX EX ttl: a spent linked SCA.
 *   <ns>epoch             a random id, written once, never expiring (standalone Redis only): its
 *                         disappearance or change tells that Redis lost its data (below).
 * The `{h}` hash tag puts all keys of a subject in one slot (Lua works on Cluster) and, being a
 * digest, cannot be broken by a `}` in a tenant or subject id.
 *
 * (Other stores share the namespace: the audit log uses `d:`, `e:` and `audit`.)
 *
 * Size per subject (`MEMORY USAGE`, Redis 7): at most CAPS.devices + CAPS.countries +
 * CAPS.resources + 1 = 91 fields. A typical subject (5 hashed device ids, 3 countries, a location)
 * is ~350 bytes; a full one ~2.7 KB while every field and value is under 64 bytes (listpack), up
 * to ~15 KB with 200-character resource names (hashtable). A once-only key is ~100 bytes while
 * it lives. Payment state: the counters ~100 bytes, 200 trusted payees (64-character ids) ~20 KB,
 * 20 failures ~250 bytes, a spent SCA key ~150 bytes while it lives.
 *
 * Every call is one round trip (a Lua script via EVALSHA, or SET) and rejects within the command
 * timeout when Redis is away or slow: the client never queues offline, and a deadline guards
 * every call. The service turns rejections into fail-closed reasons.
 *
 * Data loss (a Redis restarted without persistence, a FLUSHALL, a failover to an empty
 * replica) would forget consumed once-only authentications, and one could be used again while
 * it is still fresh. Every once-only read also reads the epoch key in the same script; when the
 * epoch this process saw is gone or changed, once-only state counts as unavailable (step-up)
 * for the window in which a consumed authentication could still be fresh (consumeTtl). Payment
 * reads that ask about a linked SCA read the epoch the same way; a linked SCA authenticated before
 * the loss was seen (plus PSD2_LOSS_MARGIN, the largest clock skew) counts as unavailable. A run_id
 * change alone is not a loss (a restart with AOF keeps the data), so the epoch is the signal.
 * Limits: a process that starts while Redis is already empty cannot tell a loss from a first
 * start, and on Redis Cluster (where the epoch key cannot share a slot with every subject) the
 * check is off; docs/operations-redis-persistence.md says how to run Redis so neither matters.
 */
import { randomUUID } from 'node:crypto'
import { sha256 } from '../ids.js'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisNode } from '../config.js'
import type { HistoryUpdate } from '../engine/learning.js'
import type { Location } from '../engine/model.js'
import { CAPS, consumeTtl, isEmptyUpdate, type HistoryQuery, type HistoryRead, type HistoryStore, type SubjectKey } from './history.js'
import { createRedisPsd2Store, definePsd2Commands, type Psd2Commands } from './redis-psd2.js'
import { READ_EPOCH_LUA } from './redis-epoch.js'
import { DAY } from '../engine/units.js'

export interface RedisHistoryOptions {
  url?: string | undefined
  clusterNodes?: RedisNode[] | undefined
  /** Redis Sentinel: the sentinels, and the name of the master they watch (default `mymaster`). */
  sentinels?: RedisNode[] | undefined
  sentinelName?: string | undefined
  commandTimeoutMs: number
  /** Namespace of every key; default `stepup:`. */
  keyPrefix?: string | undefined
  /** Connection errors (reported on each failed reconnect); they never crash the process. */
  onError?: (err: Error) => void
  /** Redis lost its data: once-only authentications cannot be checked until `until` (epoch seconds). */
  onDataLoss?: (info: { until: number }) => void
}

/**
 * KEYS[1] history hash, KEYS[2] once-only key (any key of the same slot when unused), KEYS[3]
 * the epoch key (likewise). ARGV[1] '1' = read history, ARGV[2] '1' = check once-only, ARGV[3]
 * '' or an epoch to write when none exists (with the once-only check), ARGV[4..] fields to read.
 * Returns { HLEN, EXISTS, epoch or '', values... }.
 */
const READ_LUA = `${READ_EPOCH_LUA}
local out = { 0, 0, '' }
if ARGV[1] == '1' then
  out[1] = redis.call('HLEN', KEYS[1])
  local values = redis.call('HMGET', KEYS[1], unpack(ARGV, 4))
  for i = 1, #values do out[i + 3] = values[i] end
end
if ARGV[2] == '1' then
  out[2] = redis.call('EXISTS', KEYS[2])
  out[3] = read_epoch(KEYS[3], ARGV[3])
end
return out
`

/**
 * KEYS[1] history hash. ARGV: now, oldest kept, ttl, cap d:, cap c:, cap r:, location ('' = none),
 * then the fields to stamp with now. Stamps, prunes what is older than `oldest`, keeps the newest
 * `cap` fields of each prefix, renews the expiry.
 */
const RECORD_LUA = `
local key, now, oldest = KEYS[1], ARGV[1], tonumber(ARGV[2])
for i = 8, #ARGV do redis.call('HSET', key, ARGV[i], now) end
if ARGV[7] ~= '' then redis.call('HSET', key, 'l', ARGV[7]) end
local caps = { d = tonumber(ARGV[4]), c = tonumber(ARGV[5]), r = tonumber(ARGV[6]) }
local groups = { d = {}, c = {}, r = {} }
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  local field, value = all[i], all[i + 1]
  local at = tonumber(field == 'l' and string.match(value, '^%[(%d+)') or value)
  local group = groups[string.sub(field, 1, 1)]
  if at == nil or at < oldest or (field ~= 'l' and group == nil) then
    redis.call('HDEL', key, field)
  elseif group then
    group[#group + 1] = { field, at }
  end
end
for prefix, group in pairs(groups) do
  if #group > caps[prefix] then
    table.sort(group, function (a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
    for i = caps[prefix] + 1, #group do redis.call('HDEL', key, group[i][1]) end
  end
end
redis.call('EXPIRE', key, ARGV[3])
return 0
`

type Reply = Array<string | number | null>

/** The part of ioredis's Redis and Cluster this store uses. */
interface Client extends Psd2Commands {
  status: string
  on: (event: 'error' | 'node error', listener: (err: Error) => void) => unknown
  once: (event: 'ready', listener: () => void) => unknown
  set: (key: string, value: string, ex: 'EX', seconds: number, nx: 'NX') => Promise<string | null>
  ping: () => Promise<string>
  quit: () => Promise<unknown>
  disconnect: () => void
  defineCommand: (name: string, definition: { lua: string, numberOfKeys: number }) => void
  historyRead: (hashKey: string, onceKey: string, epochKey: string, ...args: string[]) => Promise<Reply>
  historyRecord: (hashKey: string, ...args: string[]) => Promise<unknown>
}

const backoff = (times: number): number => Math.min(times * 50, 1000)

/**
 * A client through Redis Sentinel that never gives up on its own. ioredis 6.0.0's failover
 * detector disconnects the connector when a sentinel announces +switch-master; when that lands
 * between two reconnect attempts (the master just died), connect() fails with "Connection is
 * closed." and the client ends for good, so the store would stay unavailable, failing closed,
 * until a restart (seen in 1 crash failover in 5). An end nobody asked for (straight from
 * `connecting`, not through `close`) starts a new connection after the usual backoff.
 */
class SentinelRedis extends Redis {
  #stopped = false
  #restarts = 0
  #last = ''
  constructor (options: RedisOptions & { replyMapping?: 'legacy' }) {
    super(options)
    this.on('connecting', () => { this.#last = 'connecting' })
    this.on('close', () => { this.#last = 'close' })
    this.on('ready', () => { this.#restarts = 0 })
    this.on('end', () => {
      if (this.#stopped || this.#last !== 'connecting') return
      setTimeout(() => {
        if (!this.#stopped && this.status === 'end') this.connect().catch(() => {})
      }, backoff(++this.#restarts)).unref()
    })
  }

  override disconnect (reconnect = false): void {
    if (!reconnect) this.#stopped = true
    super.disconnect(reconnect)
  }
}

/** An ioredis client that fails fast while Redis is away and reconnects by itself. */
export function createRedisClient (options: ConnectionOptions): Redis | Cluster {
  return connect(options).client as unknown as Redis | Cluster
}

type ConnectionOptions = Pick<RedisHistoryOptions, 'url' | 'clusterNodes' | 'sentinels' | 'sentinelName' | 'commandTimeoutMs'>

function connect (options: ConnectionOptions): { client: Client, kind: 'redis' | 'redis-cluster' } {
  const common = {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(1000, options.commandTimeoutMs * 4),
    maxRetriesPerRequest: 0,
    enableReadyCheck: true,
    // Concurrent decisions' commands share one write to the socket.
    enableAutoPipelining: true
  } satisfies RedisOptions
  if (options.clusterNodes !== undefined && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: backoff,
      clusterNodeRetryStrategy: backoff,
      retryDelayOnFailover: Math.min(100, options.commandTimeoutMs),
      slotsRefreshTimeout: Math.max(1000, options.commandTimeoutMs),
      redisOptions: common
    }
    const client = new Cluster(options.clusterNodes.map(n => ({ host: n.host, port: n.port })), clusterOptions)
    return { client: client as unknown as Client, kind: 'redis-cluster' }
  }
  if (options.sentinels !== undefined && options.sentinels.length > 0) {
    const client = new SentinelRedis({
      ...common,
      sentinels: options.sentinels.map(n => ({ host: n.host, port: n.port })),
      name: options.sentinelName ?? 'mymaster',
      role: 'master',
      enableOfflineQueue: false,
      retryStrategy: backoff,
      // Keep asking the sentinels while none answers: a failover must not end reconnection.
      sentinelRetryStrategy: backoff,
      sentinelCommandTimeout: Math.max(500, options.commandTimeoutMs),
      // Reconnect to the new master as soon as a sentinel announces +switch-master ...
      failoverDetector: true,
      // ... and when the old master, now a replica, refuses a write.
      reconnectOnError: (err: Error) => err.message.startsWith('READONLY') ? 2 : false
    })
    return { client: client as unknown as Client, kind: 'redis' }
  }
  if (options.url === undefined) throw new Error('createRedisHistoryStore: set url, clusterNodes or sentinels')
  const client = new Redis(options.url, { ...common, enableOfflineQueue: false, retryStrategy: backoff })
  return { client: client as unknown as Client, kind: 'redis' }
}

const subjectHash = (key: SubjectKey): string =>
  // The tenant is length-prefixed so no (tenant, subject) pair can collide with another.
  sha256(`${key.tenant === undefined ? '\u0000' : `t:${key.tenant.length}:${key.tenant}`}\u0000${key.subject}`, 'hex').slice(0, 32)

const encodeLocation = (l: Location, at: number): string =>
  JSON.stringify([at, l.latitude, l.longitude, l.accuracyKm, l.country ?? null, l.city ?? null])

function decodeLocation (raw: string): Location & { at: number } {
  const v: unknown = JSON.parse(raw)
  const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x)
  const isOptStr = (x: unknown): x is string | null => x === null || typeof x === 'string'
  if (!Array.isArray(v) || v.length !== 6 || !isNum(v[0]) || !isNum(v[1]) || !isNum(v[2]) || !isNum(v[3])
    || !isOptStr(v[4]) || !isOptStr(v[5])) {
    throw new Error('history store: malformed location entry')
  }
  const out: Location & { at: number } = { latitude: v[1], longitude: v[2], accuracyKm: v[3], at: v[0] }
  if (v[4] !== null) out.country = v[4]
  if (v[5] !== null) out.city = v[5]
  return out
}

const lastSeen = (raw: string | number | null | undefined): number | undefined => {
  if (raw === null || raw === undefined) return undefined
  const n = Number(raw)
  if (!Number.isFinite(n)) throw new Error('history store: malformed last-seen entry')
  return n
}

export function createRedisHistoryStore (options: RedisHistoryOptions): HistoryStore {
  const ns = options.keyPrefix ?? 'stepup:'
  // A brace in the prefix would become the hash tag and scatter a subject's keys over slots.
  if (/[{}]/.test(ns)) throw new Error('createRedisHistoryStore: keyPrefix must not contain { or }')
  const { client, kind } = connect(options)
  const timeoutMs = options.commandTimeoutMs
  const onError = options.onError ?? (() => {})
  client.on('error', onError)
  if (kind === 'redis-cluster') client.on('node error', onError)
  client.defineCommand('historyRead', { lua: READ_LUA, numberOfKeys: 3 })
  client.defineCommand('historyRecord', { lua: RECORD_LUA, numberOfKeys: 1 })
  definePsd2Commands(client)

  const hashKey = (h: string): string => `${ns}h:{${h}}`
  const onceKey = (h: string, authTime: number): string => `${ns}o:{${h}}:${authTime}`
  const epochKey = `${ns}epoch`

  // Data-loss detection (see the file comment): the epoch this process has seen, and when (seconds,
  // the caller's clock) it last saw it lost. Once-only state cannot be trusted for the once-only
  // TTL after that; linked SCAs authenticated before it (plus a margin) can never be checked.
  const checksEpoch = kind === 'redis'
  let epoch: string | undefined
  let lostAt = -Infinity
  const onceOnlyWindow = (ttl: number | undefined): number => Math.max(ttl ?? 0, consumeTtl(0))
  const noteEpoch = (seen: string, now: number, ttl: number | undefined): void => {
    if (epoch !== undefined && seen !== epoch) {
      lostAt = now
      options.onDataLoss?.({ until: now + onceOnlyWindow(ttl) })
    }
    epoch = seen
  }

  // While a connection attempt is under way, a call waits for it (within its deadline); when
  // Redis is known to be away, it fails at once. Offline, nothing is ever queued.
  let readyWait: Promise<void> | undefined
  const whenUsable = (): Promise<void> | undefined => {
    if (client.status !== 'connecting' && client.status !== 'connect') return undefined
    readyWait ??= new Promise<void>(resolve => client.once('ready', () => { readyWait = undefined; resolve() }))
    return readyWait
  }

  /** Runs one command, rejecting by the deadline whatever the client does. */
  const call = <T>(operation: string, send: () => Promise<T>): Promise<T> => {
    const started = Date.now()
    let expired = false
    const pending = whenUsable()
    // A call that waited for the connection past its deadline is not sent late.
    const result = pending === undefined ? send() : pending.then(() => expired ? Promise.reject(new Error('expired')) : send())
    result.catch(() => {}) // a late rejection after the deadline is not unhandled
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        expired = true
        reject(new Error(`history store: ${operation} timed out after ${Date.now() - started} ms`))
      }, timeoutMs + 25)
    })
    return Promise.race([result, deadline]).finally(() => clearTimeout(timer))
  }

  const psd2 = createRedisPsd2Store({
    client,
    call,
    ns,
    subjectHash,
    epoch: checksEpoch
      ? { key: epochKey, candidate: randomUUID, note: (seen, now) => noteEpoch(seen, now, undefined), lostAt: () => lostAt }
      : undefined
  })

  return {
    kind,
    psd2,

    async read (key: SubjectKey, query: HistoryQuery, now: number): Promise<HistoryRead> {
      if (!query.history && query.authTime === undefined) return {}
      const h = subjectHash(key)
      const fields: string[] = []
      if (query.history) {
        fields.push('l')
        if (query.deviceId !== undefined) fields.push(`d:${query.deviceId}`)
        if (query.country !== undefined) fields.push(`c:${query.country}`)
        if (query.resource !== undefined) fields.push(`r:${query.resource}`)
      }
      const once = query.authTime === undefined ? hashKey(h) : onceKey(h, query.authTime)
      const checkEpoch = checksEpoch && query.authTime !== undefined
      const reply = await call('read', () => client.historyRead(
        hashKey(h), once, checkEpoch ? epochKey : hashKey(h), query.history ? '1' : '0', query.authTime === undefined ? '0' : '1',
        checkEpoch ? randomUUID() : '', ...fields))
      if (!Array.isArray(reply) || reply.length < 3) throw new Error('history store: unexpected reply')

      const out: HistoryRead = {}
      if (query.history) {
        let i = 4
        const next = (present: boolean): number | undefined => present ? lastSeen(reply[i++]) : undefined
        const rawLocation = reply[3]
        out.snapshot = {
          deviceLastSeen: next(query.deviceId !== undefined),
          countryLastSeen: next(query.country !== undefined),
          resourceLastSeen: next(query.resource !== undefined),
          lastLocation: rawLocation === null || rawLocation === undefined ? undefined : decodeLocation(String(rawLocation)),
          hasHistory: Number(reply[0]) > 0
        }
      }
      if (query.authTime !== undefined) {
        if (checkEpoch) noteEpoch(String(reply[2]), now, query.onceOnlyTtl)
        const untrustedUntil = lostAt + onceOnlyWindow(query.onceOnlyTtl)
        if (now < untrustedUntil) {
          out.onceOnlyUnavailable = `history store lost its data (restarted empty?): once-only authentications cannot be checked for ${Math.ceil(untrustedUntil - now)} s`
        } else {
          out.consumed = Number(reply[1]) === 1
        }
      }
      return out
    },

    async record (key: SubjectKey, update: HistoryUpdate, now: number, retentionDays: number): Promise<void> {
      if (isEmptyUpdate(update)) return
      const at = Math.floor(now)
      const ttl = Math.max(1, Math.ceil(retentionDays * DAY))
      const fields: string[] = []
      if (update.deviceId !== undefined) fields.push(`d:${update.deviceId}`)
      if (update.country !== undefined) fields.push(`c:${update.country}`)
      if (update.resource !== undefined) fields.push(`r:${update.resource}`)
      const location = update.location === undefined ? '' : encodeLocation(update.location, at)
      await call('record', () => client.historyRecord(
        hashKey(subjectHash(key)),
        String(at), String(at - ttl), String(ttl),
        String(CAPS.devices), String(CAPS.countries), String(CAPS.resources),
        location, ...fields))
    },

    async consume (key: SubjectKey, authTime: number, _now: number, ttlSeconds: number): Promise<boolean> {
      const ttl = Math.max(1, Math.ceil(ttlSeconds))
      const reply = await call('consume', () => client.set(onceKey(subjectHash(key), authTime), '1', 'EX', ttl, 'NX'))
      return reply === 'OK'
    },

    async ping (): Promise<boolean> {
      try {
        return (await call('ping', () => client.ping())) === 'PONG'
      } catch {
        return false
      }
    },

    async close (): Promise<void> {
      try {
        if (client.status === 'ready') await call('quit', () => client.quit())
      } catch {
        // closing anyway
      } finally {
        client.disconnect()
      }
    }
  }
}

/**
 * The only module that reads `process.env`. It validates every variable, applies the
 * defaults of docs/operations.md#configuration and returns a frozen object; a bad value throws a ConfigError that
 * names the variable.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { ConfigError } from './errors.js'

export interface RedisNode { host: string, port: number }

export interface Config {
  port: number
  host: string
  policiesDir: string
  redisUrl: string | undefined
  redisClusterNodes: RedisNode[] | undefined
  /** Redis Sentinel: the sentinels to ask, and the name of the master they watch. */
  redisSentinels: RedisNode[] | undefined
  redisSentinelName: string
  redisCommandTimeoutMs: number
  geoipCityDb: string | undefined
  apiKeys: string[]
  adminApiKeys: string[]
  logLevel: string
  historyMaxSubjects: number
  /** CIDRs whose X-Forwarded-For entries are believed (gateway endpoints). */
  trustedProxies: string[]
  /** Request header holding the device fingerprint at the gateway endpoints (lower case). */
  deviceHeader: string
  /** A cookie holding the device fingerprint at the gateway endpoints, read when the header is absent. */
  deviceCookie: string | undefined
  /** Environment values issuers name in `introspection.clientSecretEnv`. */
  secrets: Record<string, string | undefined>
  /** Requests per minute per caller (and per subject on POST /events); 0 = no limit. */
  rateLimitPerMinute: number
  /** POST /events per subject per minute (a step-up ends once; a flood for one user is abuse); 0 = no limit. */
  rateLimitSubjectEventsPerMinute: number
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const MIN_KEY_LENGTH = 16
/**
 * 600,000 a minute (10,000 a second) per caller: far above what one instance serves, so only a
 * runaway caller meets it, never a benchmark or a busy gateway; operators set their own.
 */
export const DEFAULT_RATE_LIMIT_PER_MINUTE = 600_000

type Env = Record<string, string | undefined>

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

const integer = (env: Env, name: string, fallback: number, min: number, max: number): number => {
  const raw = value(env, name)
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${raw}"`)
  const n = Number(raw)
  if (n < min || n > max) throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got ${n}`)
  return n
}

export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'))

const parseKeys = (env: Env, name: string): string[] => {
  const raw = value(env, name)
  if (raw === undefined) return []
  const keys = raw.split(',').map(k => k.trim())
  // `name:key` entries name a caller (callers: scopes); the length rule is the key's.
  keys.map(k => /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):(\S+)$/.exec(k)?.[2] ?? k).forEach((k, i) => {
    if (k.length < MIN_KEY_LENGTH) {
      throw new ConfigError(name, `key #${i + 1} is ${k.length} characters; use at least ${MIN_KEY_LENGTH} random characters`)
    }
    if (/\s/.test(k)) throw new ConfigError(name, `key #${i + 1} contains white space`)
  })
  return keys
}

const parseRedisUrl = (env: Env): string | undefined => {
  const raw = value(env, 'REDIS_URL')
  if (raw === undefined) return undefined
  let url: URL
  try { url = new URL(raw) } catch { throw new ConfigError('REDIS_URL', `not a URL: "${raw}"`) }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError('REDIS_URL', `expected redis:// or rediss://, got ${url.protocol}//`)
  }
  if (url.hostname === '') throw new ConfigError('REDIS_URL', 'has no host')
  return raw
}

const parseNodes = (env: Env, name: string): RedisNode[] | undefined => {
  const raw = value(env, name)
  if (raw === undefined) return undefined
  return raw.split(',').map(s => s.trim()).map(seed => {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(seed)
    const port = m ? Number(m[2]) : NaN
    if (!m || port < 1 || port > 65535) {
      throw new ConfigError(name, `expected host:port, got "${seed}"`)
    }
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port }
  })
}

const parseReadableFile = (env: Env, name: string): string | undefined => {
  const raw = value(env, name)
  if (raw === undefined) return undefined
  const path = resolve(raw)
  try {
    accessSync(path, constants.R_OK)
    if (!statSync(path).isFile()) throw new Error('not a file')
  } catch {
    throw new ConfigError(name, `cannot read the file ${path}`)
  }
  return path
}

const parseDir = (env: Env, name: string, fallback: string): string => {
  const path = resolve(value(env, name) ?? fallback)
  try {
    if (!statSync(path).isDirectory()) throw new Error('not a folder')
  } catch {
    throw new ConfigError(name, `cannot read the folder ${path}`)
  }
  return path
}

const parseTrustedProxies = (env: Env): string[] => {
  const raw = value(env, 'TRUSTED_PROXIES')
  if (raw === undefined) return ['127.0.0.0/8', '::1/128']
  return raw.split(',').map(s => s.trim()).filter(s => s !== '').map(cidr => {
    const [address, bits] = cidr.split('/')
    const family = isIP(address ?? '')
    const max = family === 4 ? 32 : 128
    const n = bits === undefined ? max : Number(bits)
    if (family === 0 || !Number.isInteger(n) || n < 0 || n > max || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new ConfigError('TRUSTED_PROXIES', `expected comma-separated addresses or CIDRs, got "${cidr}"`)
    }
    return `${address}/${n}`
  })
}

const parseHeaderName = (env: Env, name: string, fallback: string): string => {
  const raw = value(env, name)
  if (raw === undefined) return fallback
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/.test(raw)) throw new ConfigError(name, `not an HTTP header name: "${raw}"`)
  return raw.toLowerCase()
}

/** RFC 6265 cookie-name characters (an HTTP token). */
const parseCookieName = (env: Env, name: string): string | undefined => {
  const raw = value(env, name)
  if (raw === undefined) return undefined
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/.test(raw)) throw new ConfigError(name, `not a cookie name: "${raw}"`)
  return raw
}

export function loadConfig (env: Env = process.env): Readonly<Config> {
  const host = value(env, 'HOST') ?? '127.0.0.1'
  const apiKeys = parseKeys(env, 'API_KEYS')
  if (apiKeys.length === 0 && !isLoopback(host)) {
    throw new ConfigError('HOST', `refusing to listen on ${host} without API_KEYS: set API_KEYS, or keep HOST on loopback`)
  }
  const redisUrl = parseRedisUrl(env)
  const redisClusterNodes = parseNodes(env, 'REDIS_CLUSTER_NODES')
  if (redisUrl !== undefined && redisClusterNodes !== undefined) {
    throw new ConfigError('REDIS_CLUSTER_NODES', 'set either REDIS_URL or REDIS_CLUSTER_NODES, not both')
  }
  const redisSentinels = parseNodes(env, 'REDIS_SENTINELS')
  if (redisSentinels !== undefined && (redisUrl !== undefined || redisClusterNodes !== undefined)) {
    throw new ConfigError('REDIS_SENTINELS', 'set only one of REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS')
  }
  const redisSentinelName = value(env, 'REDIS_SENTINEL_NAME') ?? 'mymaster'
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(redisSentinelName)) {
    throw new ConfigError('REDIS_SENTINEL_NAME', `expected a master name of letters, digits, ".", "_" or "-", got "${redisSentinelName}"`)
  }
  const logLevel = value(env, 'LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  }
  return Object.freeze({
    port: integer(env, 'PORT', 8080, 0, 65535),
    host,
    policiesDir: parseDir(env, 'POLICIES_DIR', './policies'),
    redisUrl,
    redisClusterNodes,
    redisSentinels,
    redisSentinelName,
    redisCommandTimeoutMs: integer(env, 'REDIS_COMMAND_TIMEOUT_MS', 50, 1, 60_000),
    geoipCityDb: parseReadableFile(env, 'GEOIP_CITY_DB'),
    apiKeys,
    adminApiKeys: parseKeys(env, 'ADMIN_API_KEYS'),
    logLevel,
    historyMaxSubjects: integer(env, 'HISTORY_MAX_SUBJECTS', 100_000, 1, 100_000_000),
    trustedProxies: parseTrustedProxies(env),
    deviceHeader: parseHeaderName(env, 'DEVICE_HEADER', 'x-device-fingerprint'),
    deviceCookie: parseCookieName(env, 'DEVICE_COOKIE'),
    secrets: Object.freeze(Object.fromEntries(Object.entries(env).filter(([k]) => /SECRET/.test(k)))),
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', DEFAULT_RATE_LIMIT_PER_MINUTE, 0, 100_000_000),
    rateLimitSubjectEventsPerMinute: integer(env, 'RATE_LIMIT_SUBJECT_EVENTS_PER_MINUTE', 120, 0, 100_000_000)
  })
}

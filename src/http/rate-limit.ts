/**
 * Rate limits, so that one caller cannot starve the others: per caller (its API key, or its IP
 * address when no keys are configured) on every API route, and per subject on POST /events.
 * @fastify/rate-limit counts in Redis when the service has one (the limit holds across
 * instances) and in memory otherwise. A store that fails lets requests through: a rate limit is
 * not an access decision, and a Redis outage must not turn into 5xx answers.
 */
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { ApiError } from '../errors.js'
import { sha256 } from '../ids.js'

export interface RateLimitSettings {
  /** Requests a minute per caller; 0 = none. */
  perMinute: number
  /** POST /events a minute per subject; 0 = none. */
  subjectEventsPerMinute: number
  /** Are API keys configured (then callers are told apart by key, else by address)? */
  keyed: boolean
  /** Counts in Redis when given (shared by every instance). */
  redis?: Redis | Cluster | undefined
}

/** Throws a 429 when this subject sent too many events; a no-op when the limit is off. */
export type SubjectLimiter = (request: FastifyRequest, reply: FastifyReply, subjectKey: string) => Promise<void>

/** Routes every caller may poll without a limit: probes and scrapes. */
const EXEMPT = new Set(['/healthz', '/readyz', '/metrics'])
const WINDOW_MS = 60_000

/**
 * The caller: a digest of its key (never the key itself, which would land in Redis), else its
 * address. On the gateway endpoints `Authorization` carries the *user's* token, which anyone can
 * vary at will: there the caller is its `X-Stepup-Key`, else its address.
 */
export function callerKey (request: FastifyRequest, keyed: boolean): string {
  if (keyed) {
    const gatewayKey = request.headers['x-stepup-key']
    if (typeof gatewayKey === 'string' && gatewayKey.length > 0) return `k:${sha256(gatewayKey, 'hex').slice(0, 32)}`
    const auth = request.headers.authorization
    const gatewayRoute = (request.routeOptions.url ?? request.url).startsWith('/authz/')
    if (!gatewayRoute && typeof auth === 'string' && auth.length > 0) return `k:${sha256(auth, 'hex').slice(0, 32)}`
  }
  // IPv6 callers are grouped by /64: one host has a whole /64 to pick addresses from.
  return `a:${normalizeIP(request.ip, 64)}`
}

const limited = (what: string, max: number, after: string): ApiError =>
  new ApiError('rate_limited', `${what}: more than ${max} requests a minute; retry in ${after}`)

/**
 * Registers the per-caller limit on the routes declared after it, and returns the per-subject
 * limiter for POST /events.
 */
export async function registerRateLimits (app: FastifyInstance, settings: RateLimitSettings): Promise<SubjectLimiter> {
  if (settings.perMinute <= 0 && settings.subjectEventsPerMinute <= 0) return async () => {}
  await app.register(rateLimit, {
    global: settings.perMinute > 0,
    max: Math.max(1, settings.perMinute),
    timeWindow: WINDOW_MS,
    hook: 'onRequest',
    keyGenerator: request => callerKey(request, settings.keyed),
    allowList: request => EXEMPT.has(request.routeOptions.url ?? ''),
    skipOnError: true,
    nameSpace: 'stepup:rl:',
    ...(settings.redis === undefined ? {} : { redis: settings.redis }),
    errorResponseBuilder: (_request, context) => limited('caller', context.max, context.after)
  })
  if (settings.subjectEventsPerMinute <= 0) return async () => {}

  const subjects = new WeakMap<FastifyRequest, string>()
  const check = app.createRateLimit({
    max: settings.subjectEventsPerMinute,
    timeWindow: WINDOW_MS,
    keyGenerator: request => `s:${subjects.get(request) ?? ''}`
  })
  return async (request, reply, subjectKey) => {
    subjects.set(request, sha256(subjectKey, 'hex').slice(0, 32))
    const result = await check(request)
    if (result.isAllowed || !result.isExceeded) return
    reply.header('retry-after', String(result.ttlInSeconds))
    throw limited('subject', result.max, `${result.ttlInSeconds} s`)
  }
}

import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { HistoryStore } from './history.js'
import { createMemoryHistoryStore } from './memory-history.js'
import { createRedisHistoryStore, type RedisHistoryOptions } from './redis-history.js'

type RedisConfig = Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'redisSentinels' | 'redisSentinelName' | 'redisCommandTimeoutMs'>

/** Is a Redis (single, Cluster or behind Sentinel) configured? */
export const usesRedis = (config: RedisConfig): boolean =>
  config.redisUrl !== undefined || config.redisClusterNodes !== undefined || config.redisSentinels !== undefined

/** The connection options of every Redis client the service makes, from the configuration. */
export const redisConnection = (config: RedisConfig): Pick<RedisHistoryOptions, 'url' | 'clusterNodes' | 'sentinels' | 'sentinelName'> => ({
  url: config.redisUrl,
  clusterNodes: config.redisClusterNodes,
  sentinels: config.redisSentinels,
  sentinelName: config.redisSentinelName
})

/** The history store the configuration asks for: Redis, Redis Cluster, Redis Sentinel, or in memory. */
export function createHistoryStore (config: RedisConfig & Pick<Config, 'historyMaxSubjects'>, logger: Logger): HistoryStore {
  if (usesRedis(config)) {
    return createRedisHistoryStore({
      ...redisConnection(config),
      commandTimeoutMs: config.redisCommandTimeoutMs,
      onError: rateLimited(30_000, err => logger.warn({ err: err.message }, 'redis connection error (history triggers fail closed until it is back)')),
      onDataLoss: ({ until }) => logger.error({ until: new Date(until * 1000).toISOString() }, 'redis lost its data (restarted without persistence, flushed or failed over to an empty replica): once-only authentications step up until then, and payments authenticated before the loss need a new SCA; see docs/operations-redis-persistence.md')
    })
  }
  logger.info('history: in memory (one instance only; set REDIS_URL to share it between instances)')
  return createMemoryHistoryStore({ maxSubjects: config.historyMaxSubjects })
}

/** Calls `fn` at most once per `intervalMs`: a Redis outage reports on every reconnect attempt. */
export function rateLimited (intervalMs: number, fn: (err: Error) => void): (err: Error) => void {
  let last = 0
  return err => {
    const now = Date.now()
    if (now - last < intervalMs) return
    last = now
    fn(err)
  }
}

import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { HistoryStore } from './history.js'
import { createMemoryHistoryStore } from './memory-history.js'
import { createRedisHistoryStore } from './redis-history.js'

/** The history store the configuration asks for: Redis, Redis Cluster, or in memory. */
export function createHistoryStore (config: Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'redisCommandTimeoutMs' | 'historyMaxSubjects'>, logger: Logger): HistoryStore {
  if (config.redisUrl !== undefined) {
    return createRedisHistoryStore({ url: config.redisUrl, commandTimeoutMs: config.redisCommandTimeoutMs })
  }
  if (config.redisClusterNodes !== undefined) {
    return createRedisHistoryStore({ clusterNodes: config.redisClusterNodes, commandTimeoutMs: config.redisCommandTimeoutMs })
  }
  logger.info('history: in memory (one instance only; set REDIS_URL to share it between instances)')
  return createMemoryHistoryStore({ maxSubjects: config.historyMaxSubjects })
}

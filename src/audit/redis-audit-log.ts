/**
 * The audit trail in a Redis Stream (`XADD … MAXLEN ~ n`, so it stays bounded), shared by every
 * instance. Entries are buffered and written in the background: an audit write never adds a
 * round trip to a decision. Step-ups awaiting their outcome are remembered for a day.
 */
import type { Cluster, Redis } from 'ioredis'
import { matches, type AuditEntry, type AuditLog, type StepUpRef } from './audit-log.js'

const DAY = 86400
const SCAN_LIMIT = 10_000

export function createRedisAuditLog (client: Redis | Cluster, options: { maxEntries: number, prefix?: string, onError?: (err: Error) => void }): AuditLog {
  const prefix = options.prefix ?? 'stepup:'
  const stream = `${prefix}audit`
  const refKey = (id: string): string => `${prefix}d:{${id}}`
  const claimKey = (id: string): string => `${prefix}e:{${id}}`
  let buffer: AuditEntry[] = []
  let timer: NodeJS.Timeout | undefined
  const report = (err: Error): void => { options.onError?.(err) }

  const flush = async (): Promise<void> => {
    if (timer) { clearTimeout(timer); timer = undefined }
    const batch = buffer
    buffer = []
    await Promise.all(batch.map(e =>
      client.xadd(stream, 'MAXLEN', '~', String(options.maxEntries), '*', 'e', JSON.stringify(e)).catch(report)))
  }

  return {
    kind: 'redis',
    append (entry) {
      buffer.push(entry)
      if (buffer.length >= 100) void flush()
      else timer ??= setTimeout(() => { void flush() }, 50).unref()
    },
    rememberStepUp (id, ref) {
      client.set(refKey(id), JSON.stringify(ref), 'EX', DAY).catch(report)
    },
    async findStepUp (id) {
      const raw = await client.get(refKey(id))
      return raw === null ? undefined : JSON.parse(raw) as StepUpRef
    },
    async claimOutcome (id) {
      return (await client.set(claimKey(id), '1', 'EX', DAY, 'NX')) === 'OK'
    },
    async query (filter) {
      await flush()
      const end = filter.to === undefined ? '+' : String(Math.floor(filter.to))
      const start = filter.from === undefined ? '-' : String(Math.floor(filter.from))
      const rows = await client.xrevrange(stream, end, start, 'COUNT', SCAN_LIMIT)
      const out: AuditEntry[] = []
      for (const [, fields] of rows) {
        const e = JSON.parse(fields[1] ?? '{}') as AuditEntry
        if (matches(e, filter)) out.push(e)
        if (out.length >= filter.limit) break
      }
      return out
    },
    flush,
    async close () { await flush() }
  }
}

/**
 * The audit trail in a Redis Stream (`XADD … MAXLEN ~ n`, so it stays bounded), shared by every
 * instance. Records are buffered and written in the background, a batch (up to 100 records, or
 * what 50 ms gathered) in one script call: an audit write never adds a round trip to a
 * decision, and costs Redis one command per batch rather than per decision. Each record is
 * still its own stream entry. Step-ups awaiting their outcome are remembered for a day.
 */
import type { Cluster, Redis } from 'ioredis'
import { DAY } from '../engine/units.js'
import { StoreUnavailableError } from '../errors.js'
import { matches, toEntry, type AuditEntry, type AuditLog, type AuditRecord, type StepUpRef } from './audit-log.js'

const SCAN_LIMIT = 10_000
const BATCH = 100
const EXPORT_PAGE = 1000

/** KEYS[1] the stream, ARGV[1] MAXLEN, ARGV[2..] one JSON record each. */
const APPEND_LUA = `
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
return #ARGV - 1
`

type AuditClient = (Redis | Cluster) & { auditAppend?: (stream: string, maxLen: string, ...records: string[]) => Promise<number> }

export function createRedisAuditLog (redis: Redis | Cluster, options: { maxEntries: number, prefix?: string, onError?: (err: Error) => void }): AuditLog {
  const prefix = options.prefix ?? 'stepup:'
  const stream = `${prefix}audit`
  const refKey = (id: string): string => `${prefix}d:{${id}}`
  const claimKey = (id: string): string => `${prefix}e:{${id}}`
  const client = redis as AuditClient
  if (client.auditAppend === undefined) client.defineCommand('auditAppend', { lua: APPEND_LUA, numberOfKeys: 1 })
  const maxLen = String(options.maxEntries)
  let buffer: string[] = []
  let timer: NodeJS.Timeout | undefined
  const report = (err: Error): void => { options.onError?.(err) }
  /** A Redis failure on a read the caller waits for: typed, so the route answers 503. */
  const unavailable = (err: unknown): never => { throw new StoreUnavailableError('audit store', err) }

  const flush = async (): Promise<void> => {
    if (timer) { clearTimeout(timer); timer = undefined }
    if (buffer.length === 0) return
    const batch = buffer
    buffer = []
    await client.auditAppend!(stream, maxLen, ...batch).catch(report)
  }

  return {
    kind: 'redis',
    append (record) {
      buffer.push(JSON.stringify(record))
      if (buffer.length >= BATCH) void flush()
      else timer ??= setTimeout(() => { void flush() }, 50).unref()
    },
    rememberStepUp (id, ref) {
      client.set(refKey(id), JSON.stringify(ref), 'EX', DAY).catch(report)
    },
    async findStepUp (id) {
      const raw = await client.get(refKey(id)).catch(unavailable)
      return raw === null ? undefined : JSON.parse(raw) as StepUpRef
    },
    async claimOutcome (id) {
      return (await client.set(claimKey(id), '1', 'EX', DAY, 'NX').catch(unavailable)) === 'OK'
    },
    async query (filter) {
      await flush()
      const end = filter.to === undefined ? '+' : String(Math.floor(filter.to))
      const start = filter.from === undefined ? '-' : String(Math.floor(filter.from))
      const rows = await client.xrevrange(stream, end, start, 'COUNT', SCAN_LIMIT).catch(unavailable)
      const out: AuditEntry[] = []
      for (const [, fields] of rows) {
        const e = JSON.parse(fields[1] ?? '{}') as AuditRecord
        if (matches(e, filter)) out.push(toEntry(e))
        if (out.length >= filter.limit) break
      }
      return out
    },
    async* export ({ since }) {
      await flush()
      let cursor = since === undefined ? '-' : String(Math.floor(since))
      for (;;) {
        const rows = await client.xrange(stream, cursor, '+', 'COUNT', EXPORT_PAGE)
        for (const [, fields] of rows) yield JSON.parse(fields[1] ?? '{}') as AuditRecord
        if (rows.length < EXPORT_PAGE) return
        cursor = `(${rows[rows.length - 1]![0]}`
      }
    },
    flush,
    async close () { await flush() }
  }
}

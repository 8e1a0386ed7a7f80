/**
 * `stepup replay --policies <dir> --from <export file | redis URL> [--since 24h] [--fail-on weaker] [--json]`:
 * re-decides recorded decisions (GET /audit/export lines, or the Redis audit stream) with the
 * policy folder, using the recorded facts, and prints what would change.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { PolicyLoadError } from '../errors.js'
import { loadPolicySet } from '../policy/load.js'
import { toSeconds } from '../policy/duration.js'
import { createReplay, type ReplayReport } from '../audit/replay.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { formatProblemLine, plural } from './check.js'
import { EXIT, UsageError, type Io } from './io.js'

export interface ReplayOptions {
  policies: string
  from: string
  since: string | undefined
  failOn: string | undefined
  json: boolean
  /** Redis key prefix of the audit stream (default `stepup:`). */
  prefix?: string
}

/** `24h`, `30m`, `7d` ago, or an ISO 8601 time. */
export function parseSince (since: string, nowMs: number): number {
  const absolute = Date.parse(since)
  if (/^\d{4}-\d{2}-\d{2}/.test(since) && !Number.isNaN(absolute)) return absolute
  try {
    return nowMs - toSeconds(since) * 1000
  } catch {
    throw new UsageError(`--since: "${since}" is neither a duration (24h, 30m, 7d) nor an ISO 8601 time`)
  }
}

async function* fromFile (file: string): AsyncGenerator<AuditRecord> {
  const stream = createReadStream(file, { encoding: 'utf8' })
  const opened = new Promise<void>((resolve, reject) => { stream.once('open', () => resolve()); stream.once('error', reject) })
  try {
    await opened
  } catch (err) {
    throw new UsageError(`--from: cannot read ${file}: ${(err as Error).message}`)
  }
  let line = 0
  for await (const text of createInterface({ input: stream, crlfDelay: Infinity })) {
    line++
    if (text.trim() === '') continue
    try {
      yield JSON.parse(text) as AuditRecord
    } catch {
      throw new UsageError(`--from: ${file}:${line}: not a JSON line (expected GET /audit/export output)`)
    }
  }
}

async function* fromRedis (url: string, since: number | undefined, prefix: string | undefined): AsyncGenerator<AuditRecord> {
  const { createRedisClient } = await import('../signals/redis-history.js')
  const { createRedisAuditLog } = await import('../audit/redis-audit-log.js')
  const client = createRedisClient({ url, commandTimeoutMs: 5000 })
  client.on('error', () => {})
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new UsageError(`--from: cannot connect to ${url.replace(/\/\/[^@/]*@/, '//***@')} within 5 s`)), 5000)
      client.once('ready', () => { clearTimeout(timer); resolve() })
    })
    const audit = createRedisAuditLog(client, { maxEntries: Number.MAX_SAFE_INTEGER, ...(prefix !== undefined ? { prefix } : {}) })
    try {
      yield* audit.export!(since !== undefined ? { since } : {})
    } catch (err) {
      if (err instanceof UsageError) throw err
      throw new UsageError(`--from: cannot read the audit stream at ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${(err as Error).message}`)
    }
  } finally {
    client.disconnect()
  }
}

export async function replayCommand (options: ReplayOptions, io: Io): Promise<number> {
  if (options.failOn !== undefined && options.failOn !== 'weaker') throw new UsageError('--fail-on: the only value is "weaker"', true)
  const since = options.since === undefined ? undefined : parseSince(options.since, Date.now())
  let set
  try {
    set = (await loadPolicySet(options.policies)).set
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err
    io.err(`stepup replay: the policies in ${options.policies} do not validate (run stepup check ${options.policies}):`)
    for (const p of err.problems) io.err('  ' + formatProblemLine(p, options.policies))
    return EXIT.usage
  }
  const replay = createReplay(set, since !== undefined ? { since } : {})
  const records = /^rediss?:\/\//.test(options.from) ? fromRedis(options.from, since, options.prefix) : fromFile(options.from)
  for await (const record of records) replay.add(record)
  const report = replay.report()
  if (options.json) io.out(JSON.stringify(report, null, 2))
  else printReport(report, io)
  return options.failOn === 'weaker' && report.weaker > 0 ? EXIT.failed : EXIT.ok
}

function printReport (r: ReplayReport, io: Io): void {
  io.out(`replayed ${plural(r.replayed, 'decision')} with revision ${r.revisionAfter} (recorded under ${r.revisionsBefore.join(', ') || 'unknown revisions'}): ${r.changed} changed (${r.weaker} weaker, ${r.stronger} stronger)`)
  io.out('')
  io.out('decisions, before -> after:')
  for (const [pair, n] of Object.entries(r.transitions).sort()) io.out(`  ${pair.padEnd(20)} ${n}`)
  const policies = Object.entries(r.byPolicy).filter(([, c]) => c.before !== c.after).sort()
  if (policies.length > 0) {
    io.out('')
    io.out('policies that fire in a different number of decisions (before -> after):')
    for (const [id, c] of policies) io.out(`  ${id.padEnd(32)} ${c.before} -> ${c.after}`)
  }
  if (r.samples.length > 0) {
    io.out('')
    io.out('changed decisions (sample):')
    for (const s of r.samples) {
      io.out(`  ${s.decisionId} ${s.tenant !== undefined ? `${s.tenant}/` : ''}${s.subject} ${s.action}: ${s.before} -> ${s.after}`)
      for (const reason of s.reasons) io.out(`      ${reason}`)
    }
  }
  io.out('')
  if (r.unjudgeable.count > 0) {
    io.out(`cannot be judged (the record lacks a fact the new set needs; not guessed): ${r.unjudgeable.count}`)
    for (const [fact, n] of Object.entries(r.unjudgeable.byFact).sort()) io.out(`  ${fact.padEnd(32)} ${n}`)
  } else {
    io.out('cannot be judged: 0')
  }
  if (r.notReplayable > 0) io.out(`records without the recorded request and facts (older format), skipped: ${r.notReplayable}`)
}

/**
 * The audit trail (docs/operations.md#audit): one entry per decision and per step-up outcome reported through
 * `POST /events`, queryable by operators. Two implementations behind one interface: a bounded
 * in-memory ring and a bounded Redis Stream. Writes never sit on the decision's path: they
 * are buffered and flushed in batches.
 */

export type AuditEventName =
  | 'auth.step_up_initiated' | 'auth.step_up_skipped' | 'auth.access_denied' | 'auth.allowed'
  | 'auth.step_up_completed' | 'auth.step_up_failed'

/** What is stored: `at` in milliseconds since the epoch (formatted only when read back). */
export interface AuditRecord {
  at: number
  event: AuditEventName
  decisionId: string
  tenant?: string
  subject: string
  action: string
  decision?: string
  policies?: string[]
  detail?: string
}

/** What `GET /audit` answers: a record with `at` as an ISO 8601 time. */
export type AuditEntry = Omit<AuditRecord, 'at'> & { at: string }

export const toEntry = (r: AuditRecord): AuditEntry => ({ ...r, at: new Date(r.at).toISOString() })

export interface AuditFilter {
  event?: string
  subject?: string
  action?: string
  decisionId?: string
  from?: number
  to?: number
  limit: number
}

/** What `POST /events` needs to know about a step-up it is told about. */
export interface StepUpRef { tenant?: string, subject: string, action: string }

export interface AuditLog {
  readonly kind: 'memory' | 'redis'
  append: (record: AuditRecord) => void
  /** Remembers a step-up decision so its outcome can be reported later. */
  rememberStepUp: (decisionId: string, ref: StepUpRef) => void
  findStepUp: (decisionId: string) => Promise<StepUpRef | undefined>
  /** Marks the outcome as reported; false when it already was. */
  claimOutcome: (decisionId: string) => Promise<boolean>
  query: (filter: AuditFilter) => Promise<AuditEntry[]>
  flush: () => Promise<void>
  close: () => Promise<void>
}

export const matches = (e: AuditRecord, f: AuditFilter): boolean => {
  const t = e.at
  return (f.event === undefined || e.event === f.event) &&
    (f.subject === undefined || e.subject === f.subject) &&
    (f.action === undefined || e.action === f.action) &&
    (f.decisionId === undefined || e.decisionId === f.decisionId) &&
    (f.from === undefined || t >= f.from) &&
    (f.to === undefined || t <= f.to)
}

/** A bounded map: the oldest keys go first. */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>()
  constructor (private readonly max: number) {}
  get (k: K): V | undefined { return this.map.get(k) }
  has (k: K): boolean { return this.map.has(k) }
  set (k: K, v: V): void {
    this.map.delete(k)
    this.map.set(k, v)
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!)
  }
}

export function createMemoryAuditLog (options: { maxEntries: number }): AuditLog {
  const ring: AuditRecord[] = []
  let start = 0
  const stepUps = new BoundedMap<string, StepUpRef>(options.maxEntries)
  const claimed = new BoundedMap<string, true>(options.maxEntries)
  return {
    kind: 'memory',
    append (record) {
      if (ring.length < options.maxEntries) ring.push(record)
      else { ring[start] = record; start = (start + 1) % options.maxEntries }
    },
    rememberStepUp (id, ref) { stepUps.set(id, ref) },
    async findStepUp (id) { return stepUps.get(id) },
    async claimOutcome (id) {
      if (claimed.has(id)) return false
      claimed.set(id, true)
      return true
    },
    async query (filter) {
      const out: AuditEntry[] = []
      // Newest first.
      for (let i = ring.length - 1; i >= 0 && out.length < filter.limit; i--) {
        const e = ring[(start + i) % ring.length]!
        if (matches(e, filter)) out.push(toEntry(e))
      }
      return out
    },
    async flush () {},
    async close () {}
  }
}

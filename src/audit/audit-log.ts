/**
 * The audit trail (docs/operations.md#audit): one entry per decision and per step-up outcome reported through
 * `POST /events`, queryable by operators. Two implementations behind one interface: a bounded
 * in-memory ring and a bounded Redis Stream. Writes never sit on the decision's path: they
 * are buffered and flushed in batches.
 */

import { LRUCache } from 'lru-cache'
import type { DecisionRequest, ExemptionKind, GeoFact, HistoryFact, IssuerAssurance, OnceOnlyFact, Psd2Fact, Transaction } from '../engine/model.js'

export type AuditEventName =
  | 'auth.step_up_initiated' | 'auth.step_up_skipped' | 'auth.access_denied' | 'auth.allowed'
  | 'auth.step_up_completed' | 'auth.step_up_failed'

/** The request as the engine saw it, kept so the decision can be replayed (`stepup replay`). */
export interface RecordedRequest {
  action: string
  tenant?: string
  application?: string
  subjectId: string
  enrolledFactors?: string[]
  /** Only the claims the engine reads: sub, acr, amr, auth_time, iat, exp, su, iss, cnf. */
  claims: Record<string, unknown>
  ip?: string
  /** Already a hash of the device fingerprint. */
  deviceId?: string
  resource?: string
  context: Record<string, unknown>
  /** Context keys the record dropped (`assurance.audit.redactContext`): a replay cannot judge a condition reading them. */
  redacted?: string[]
  /** The token verification result: what the issuer declares, and whether the token is DPoP-bound. */
  issuer?: IssuerAssurance
  dpopBound?: boolean
  /** The claims came from a token the service verified. */
  tokenVerified?: boolean
  /** `context.transaction` as the engine saw it (normalized, with its digests). */
  transaction?: Transaction
}

/** The facts the engine decided with; `skipped` means the service did not gather it. */
export interface RecordedFacts {
  geo: GeoFact | { status: 'skipped' }
  history: HistoryFact
  ipLists: string[] | null
  onceOnly: OnceOnlyFact
  /** PSD2 state, when a payment or lockout policy applied. */
  psd2?: Psd2Fact
}

/** What is stored: `at` in milliseconds since the epoch (formatted only when read back). */
export interface DecisionAuditRecord {
  at: number
  event: AuditEventName
  decisionId: string
  tenant?: string
  subject: string
  action: string
  decision?: string
  policies?: string[]
  detail?: string
  /** The policy set's revision that decided. */
  revision?: string
  /** The clock of the decision, in seconds (replay decides at the same instant). */
  now?: number
  request?: RecordedRequest
  facts?: RecordedFacts
  /** For `step_up`: what was asked, so a replay can tell a weaker requirement from the same one. */
  required?: { aal: number, maxAge: number, factors: string[] }
  /** A PSD2 exemption that replaced strong customer authentication in this `allow`. */
  exemption?: ExemptionKind
  /** For an observed `auth.step_up_completed`: the decision that asked for the step-up. */
  initiatedBy?: string
}

/** A reload applied (`policy.reloaded`) or refused (`policy.rejected`). */
export interface PolicyAuditRecord {
  at: number
  event: 'policy.reloaded' | 'policy.rejected'
  trigger: string
  revisionBefore: string
  /** The revision the reload would have served (absent when the new set did not compile). */
  revisionAfter?: string
  added: string[]
  removed: string[]
  changed: string[]
  problems?: string[]
}

export type AuditRecord = DecisionAuditRecord | PolicyAuditRecord

export const isDecisionRecord = (r: AuditRecord): r is DecisionAuditRecord => 'decisionId' in r

/**
 * The claims a decision record keeps: those the engine reads to judge the session, and the
 * token's scopes (`scope`, `scp`), which policies may require. Also kept: the step-up claim the
 * token's issuer declares, when it has another name.
 */
export const RECORDED_CLAIMS = ['sub', 'acr', 'amr', 'auth_time', 'iat', 'exp', 'su', 'iss', 'cnf', 'scope', 'scp', 'authorization_details'] as const

/** The normalized request as a record keeps it: claims limited, listed context keys dropped. */
export function recordRequest (request: DecisionRequest, redactContext: readonly string[] = []): RecordedRequest {
  const claims: Record<string, unknown> = {}
  // Redacting `transaction` also drops what names the payee elsewhere: the token's authorization_details.
  const dropPayment = redactContext.includes('transaction')
  for (const name of [...RECORDED_CLAIMS, request.issuer?.stepUpClaim?.claim]) {
    if (name === 'authorization_details' && dropPayment) continue
    if (name !== undefined && request.claims[name] !== undefined) claims[name] = request.claims[name]
  }
  const context: Record<string, unknown> = {}
  const redacted: string[] = []
  for (const key of Object.keys(request.context)) {
    if (redactContext.includes(key)) redacted.push(key)
    else context[key] = request.context[key]
  }
  const out: RecordedRequest = { action: request.action, subjectId: request.subjectId, claims, context }
  if (redacted.length > 0) out.redacted = redacted
  if (request.tenant !== undefined) out.tenant = request.tenant
  if (request.application !== undefined) out.application = request.application
  if (request.enrolledFactors !== undefined) out.enrolledFactors = request.enrolledFactors
  if (request.ip !== undefined) out.ip = request.ip
  if (request.deviceId !== undefined) out.deviceId = request.deviceId
  if (request.resource !== undefined) out.resource = request.resource
  if (request.issuer !== undefined) out.issuer = request.issuer
  if (request.dpopBound !== undefined) out.dpopBound = request.dpopBound
  if (request.tokenVerified !== undefined) out.tokenVerified = request.tokenVerified
  if (request.transaction !== undefined && !dropPayment) out.transaction = request.transaction
  return out
}

/** What `GET /audit` answers: a record (of either kind) with `at` as an ISO 8601 time. */
export type AuditEntry = { at: string, event: AuditRecord['event'] }
  & Partial<Omit<DecisionAuditRecord, 'at' | 'event'>> & Partial<Omit<PolicyAuditRecord, 'at' | 'event'>>

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
  /** Every stored record from `since` (ms) on, oldest first, read in pages: for `GET /audit/export`. */
  export?: (options: { since?: number }) => AsyncIterable<AuditRecord>
  flush: () => Promise<void>
  close: () => Promise<void>
}

export const matches = (e: AuditRecord, f: AuditFilter): boolean => {
  const t = e.at
  const d = isDecisionRecord(e) ? e : undefined
  return (f.event === undefined || e.event === f.event)
    && (f.subject === undefined || d?.subject === f.subject)
    && (f.action === undefined || d?.action === f.action)
    && (f.decisionId === undefined || d?.decisionId === f.decisionId)
    && (f.from === undefined || t >= f.from)
    && (f.to === undefined || t <= f.to)
}

/**
 * A bounded map: the least recently used keys go first. lru-cache evicts in O(1); the
 * hand-written Map version it replaces paid O(n) per insert once full (a `keys()` iterator
 * started over a Map whose head had been deleted many times).
 */
export class BoundedMap<K extends NonNullable<unknown>, V extends NonNullable<unknown>> {
  private readonly cache: LRUCache<K, V>
  constructor (max: number) { this.cache = new LRUCache<K, V>({ max }) }
  get (k: K): V | undefined { return this.cache.get(k, { updateAgeOnGet: false }) }
  has (k: K): boolean { return this.cache.has(k) }
  set (k: K, v: V): void { this.cache.set(k, v) }
  delete (k: K): void { this.cache.delete(k) }
  get size (): number { return this.cache.size }
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
    async* export ({ since }) {
      // A copy of the ring's order at the start: records appended while streaming are not repeated.
      const count = ring.length
      const first = start
      for (let i = 0; i < count; i++) {
        const e = ring[(first + i) % count]
        if (e !== undefined && (since === undefined || e.at >= since)) yield e
      }
    },
    async flush () {},
    async close () {}
  }
}

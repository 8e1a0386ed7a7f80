/**
 * The memory behind the risk signals (docs/policies.md#history), behind one narrow interface owned by the
 * service. Two implementations pass the same contract tests: in memory and Redis.
 */
import type { HistoryUpdate } from '../engine/learning.js'
import type { HistorySnapshot } from '../engine/model.js'
import type { Psd2Store } from './psd2.js'

export interface SubjectKey {
  /** undefined = the default tenant, distinct from every named one. */
  tenant: string | undefined
  subject: string
}

export interface HistoryQuery {
  /** Read the history facts for these values. */
  history: boolean
  deviceId?: string | undefined
  country?: string | undefined
  resource?: string | undefined
  /** Also tell whether this once-only authentication was consumed. */
  authTime?: number | undefined
  /** How long a consumed authentication stays remembered (consumeTtl): the window after a data loss. */
  onceOnlyTtl?: number | undefined
}

export interface HistoryRead {
  snapshot?: HistorySnapshot
  consumed?: boolean
  /** Set instead of `consumed` when the store cannot tell (it lost its data recently): why. */
  onceOnlyUnavailable?: string
}

export interface HistoryStore {
  readonly kind: 'memory' | 'redis' | 'redis-cluster'
  /** The payment state (spent linked SCAs, exemption counters, trusted payees, failed step-ups), in the same backend. */
  readonly psd2: Psd2Store
  /** One round trip: the snapshot and/or the once-only state. */
  read: (key: SubjectKey, query: HistoryQuery, now: number) => Promise<HistoryRead>
  /** One round trip, atomic: writes the update, prunes entries older than `retentionDays`, applies the caps. */
  record: (key: SubjectKey, update: HistoryUpdate, now: number, retentionDays: number) => Promise<void>
  /** Atomically marks a once-only authentication used; false when it already was. */
  consume: (key: SubjectKey, authTime: number, now: number, ttlSeconds: number) => Promise<boolean>
  /** Test and operations hook: is the backend reachable now? */
  ping: () => Promise<boolean>
  close: () => Promise<void>
}

/** Per-subject caps: memory per user is bounded whatever callers send. */
export const CAPS = { devices: 20, countries: 20, resources: 50 } as const

/** How long a consumed once-only authentication is remembered (it can never be fresh again after). */
export const consumeTtl = (clockSkew: number): number => Math.max(60, clockSkew * 2 + 60)

export const isEmptyUpdate = (u: HistoryUpdate): boolean =>
  u.deviceId === undefined && u.country === undefined && u.location === undefined && u.resource === undefined

/**
 * The per-subject state behind payment policies (bind: transaction, exemptions, lockout), kept
 * by every history store next to the history: spent linked SCAs, the exemption counters since
 * the last SCA, the trusted beneficiaries and the recent failed step-ups.
 * Implementations: memory-psd2.ts (in memory) and redis-psd2.ts (Redis and Redis Cluster); both
 * pass the same contract tests.
 */
import type { Psd2Facts } from '../engine/model.js'
import type { SubjectKey } from './history.js'

export interface Psd2Query {
  /** Has this linked SCA (auth_time + transaction hash) been spent? */
  linked?: { authTime: number, txHash: string }
  /** Is this payee (a salted hash of the IBAN, computed by the caller) trusted by the subject? */
  payeeId?: string
  /** Return the failed step-ups recorded within this many seconds. */
  lockoutWindow?: number
}

/** What a read answers: the engine's PSD2 facts (one shape for the store and the engine). */
export type Psd2State = Psd2Facts

export interface Psd2Store {
  read: (key: SubjectKey, query: Psd2Query, now: number) => Promise<Psd2State>
  /** Atomically counts one exempted payment. With `limit`, only when count < limit.count and cents + payment.cents <= limit.cents; returns whether it was counted. */
  exempt: (key: SubjectKey, payment: { cents: number, limit?: { count: number, cents: number } }, now: number) => Promise<boolean>
  /** Atomically spends a linked SCA: false when (authTime, txHash) was already spent. On success, in the same atomic step: resets the exemption counters, clears the failed attempts, and adds trustPayeeId (if given) to the trusted list. */
  completeSca: (key: SubjectKey, sca: { authTime: number, txHash: string, ttl: number, trustPayeeId?: string }, now: number) => Promise<boolean>
  /** Records one failed step-up at `now`; keeps at most the last 20, drops those older than `window` seconds. */
  recordFailure: (key: SubjectKey, now: number, window: number) => Promise<void>
  /** Forgets the failed step-ups: a step-up succeeded on a lockout policy without `bind` (failures count only in a row). */
  clearFailures: (key: SubjectKey, now: number) => Promise<void>
}

/** Per-subject caps. Dropping a trusted payee (the oldest first) only means another SCA. */
export const PSD2_CAPS = { failures: 20, trustedPayees: 200 } as const

/** The exemption counters and the trusted payees expire this long after their last write (seconds). */
export const PSD2_TTL = 400 * 86400

/**
 * After a data loss, a linked SCA authenticated up to this many seconds after the loss was seen
 * counts as unavailable: the largest clock skew a policy set may allow (assurance.clockSkew is
 * at most 10m), so an authentication whose spend the store may have forgotten is never taken
 * for unspent.
 */
export const PSD2_LOSS_MARGIN = 600

/** Failure and trust times are kept to the second (as the history is on Redis). */
export const toSecond = (now: number): number => Math.floor(now)

/** Is `at` (a recorded failure) within `window` seconds before `now`? */
export const withinWindow = (at: number, now: number, window: number): boolean => at > now - window

/** Rejects arguments no caller should send: a store never guesses what was meant. */
export function checkPayment (payment: { cents: number, limit?: { count: number, cents: number } | undefined }): void {
  const counts = (n: number): boolean => Number.isSafeInteger(n) && n >= 0
  if (!counts(payment.cents)) throw new Error(`psd2 store: payment cents must be a whole number >= 0 (got ${payment.cents})`)
  if (payment.limit !== undefined && (!counts(payment.limit.count) || !counts(payment.limit.cents))) {
    throw new Error('psd2 store: limit count and cents must be whole numbers >= 0')
  }
}

export function checkSca (sca: { authTime: number, txHash: string, ttl: number }): void {
  if (!Number.isFinite(sca.authTime)) throw new Error('psd2 store: authTime must be a number')
  if (sca.txHash === '') throw new Error('psd2 store: txHash must not be empty')
  if (!(sca.ttl > 0)) throw new Error('psd2 store: ttl must be > 0')
}

export function checkWindow (window: number): void {
  if (!(window > 0) || !Number.isFinite(window)) throw new Error(`psd2 store: window must be > 0 seconds (got ${window})`)
}

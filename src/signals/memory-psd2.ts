/**
 * The payment state of the embedded history store (one instance only). The per-subject state
 * lives in the history store's subject entries, so it shares their cap and least-recently-used
 * eviction; spent SCAs live apart, like once-only marks: evicting a subject must never let a
 * spent SCA be used again. Every operation is synchronous between its arguments and its answer,
 * so concurrent calls are atomic.
 */
import type { SubjectKey } from './history.js'
import { checkPayment, checkSca, checkWindow, toSecond, PSD2_CAPS, PSD2_TTL, withinWindow, type Psd2Query, type Psd2State, type Psd2Store } from './psd2.js'

/** One subject's payment state; every part expires on its own (`until`, epoch seconds). */
export interface Psd2Entry {
  exempted: { count: number, cents: number, until: number } | undefined
  /** payee id -> when it was trusted; insertion order is age order (the oldest first). */
  payees: Map<string, number>
  payeesUntil: number
  /** Ascending. */
  failures: number[]
  failuresUntil: number
}

export const newPsd2Entry = (): Psd2Entry => ({ exempted: undefined, payees: new Map(), payeesUntil: 0, failures: [], failuresUntil: 0 })

export interface Psd2Subjects {
  /** The subject's payment state: undefined when it has none, unless `create`. */
  state: (key: SubjectKey, now: number, create: boolean) => Psd2Entry | undefined
  /** A string that tells subjects apart (tenant included). */
  id: (key: SubjectKey) => string
}

export function createMemoryPsd2Store (subjects: Psd2Subjects, options: { maxSpentMarks: number }): Psd2Store & { clear: () => void } {
  // Spent SCA marks: subject id + auth time + transaction hash -> expiry. TTLs differ between
  // policies, so insertion order is only roughly expiry order: expired marks are dropped from
  // the front, and all of them (at most once per second) when the cap is reached.
  const spent = new Map<string, number>()
  let lastSweep = -Infinity
  const dropExpired = (now: number): void => {
    for (const [k, until] of spent) {
      if (until > now) break
      spent.delete(k)
    }
  }
  const sweep = (now: number): void => {
    if (now < lastSweep + 1) return
    lastSweep = now
    for (const [k, until] of spent) if (until <= now) spent.delete(k)
  }
  const markOf = (key: SubjectKey, authTime: number, txHash: string): string => `${subjects.id(key)}\u0000${authTime}\u0000${txHash}`

  return {
    async read (key: SubjectKey, query: Psd2Query, now: number): Promise<Psd2State> {
      const s = subjects.state(key, now, false)
      const out: Psd2State = { exempted: { count: 0, cents: 0 }, failures: [] }
      if (s?.exempted !== undefined && s.exempted.until > now) out.exempted = { count: s.exempted.count, cents: s.exempted.cents }
      if (query.linked !== undefined) {
        const until = spent.get(markOf(key, query.linked.authTime, query.linked.txHash))
        out.linkedConsumed = until !== undefined && until > now
      }
      if (query.payeeId !== undefined) out.trustedPayee = s !== undefined && s.payeesUntil > now && s.payees.has(query.payeeId)
      const window = query.lockoutWindow
      if (window !== undefined && s !== undefined && s.failuresUntil > now) out.failures = s.failures.filter(at => withinWindow(at, now, window))
      return out
    },

    async exempt (key, payment, now): Promise<boolean> {
      checkPayment(payment)
      const current = subjects.state(key, now, false)?.exempted
      const { count, cents } = current !== undefined && current.until > now ? current : { count: 0, cents: 0 }
      const limit = payment.limit
      if (limit !== undefined && !(count < limit.count && cents + payment.cents <= limit.cents)) return false
      subjects.state(key, now, true)!.exempted = { count: count + 1, cents: cents + payment.cents, until: now + PSD2_TTL }
      return true
    },

    async completeSca (key, sca, now): Promise<boolean> {
      checkSca(sca)
      dropExpired(now)
      const mark = markOf(key, sca.authTime, sca.txHash)
      const until = spent.get(mark)
      if (until !== undefined && until > now) return false
      if (spent.size >= options.maxSpentMarks) sweep(now)
      if (spent.size >= options.maxSpentMarks) throw new Error('psd2 store: too many spent SCA marks to keep')
      spent.delete(mark) // re-inserted at the end
      spent.set(mark, now + sca.ttl)
      const s = subjects.state(key, now, true)!
      s.exempted = undefined
      s.failures = []
      s.failuresUntil = 0
      if (sca.trustPayeeId !== undefined) {
        if (s.payeesUntil <= now) s.payees.clear()
        s.payees.delete(sca.trustPayeeId)
        s.payees.set(sca.trustPayeeId, toSecond(now))
        while (s.payees.size > PSD2_CAPS.trustedPayees) s.payees.delete(s.payees.keys().next().value!)
        s.payeesUntil = now + PSD2_TTL
      }
      return true
    },

    async clearFailures (key, now): Promise<void> {
      const s = subjects.state(key, now, false)
      if (s !== undefined) { s.failures = []; s.failuresUntil = 0 }
    },

    async recordFailure (key, now, window): Promise<void> {
      checkWindow(window)
      const s = subjects.state(key, now, true)!
      const kept = s.failuresUntil > now ? s.failures.filter(at => withinWindow(at, now, window)) : []
      kept.push(toSecond(now))
      kept.sort((a, b) => a - b)
      s.failures = kept.slice(-PSD2_CAPS.failures)
      s.failuresUntil = now + window
    },

    clear () { spent.clear() }
  }
}

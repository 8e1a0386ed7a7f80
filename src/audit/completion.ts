/**
 * Observed completion: after a step-up for subject S and action A, the next decision for S and
 * A that allows (the session now satisfies what was asked) within an hour records
 * `auth.step_up_completed`, linked to the decision that asked. Pending step-ups are kept in a
 * bounded map per instance; a later step-up for the same subject and action replaces the
 * earlier one, and an outcome already reported through POST /events is not reported twice.
 */
import type { AuditLog, DecisionAuditRecord } from './audit-log.js'
import { BoundedMap } from './audit-log.js'
import { HOUR } from '../engine/units.js'

export const COMPLETION_WINDOW_MS = HOUR * 1000

export interface CompletionTracker {
  /** Looks at one decision record; appends `auth.step_up_completed` when it completes a pending step-up. */
  observe: (record: DecisionAuditRecord) => void
}

const keyOf = (r: { tenant?: string, subject: string, action: string }): string =>
  `${r.tenant === undefined ? '0' : `1${r.tenant}`}\u0000${r.subject}\u0000${r.action}`

export function createCompletionTracker (audit: AuditLog, options: { maxPending?: number, windowMs?: number } = {}): CompletionTracker {
  const pending = new BoundedMap<string, { decisionId: string, at: number }>(options.maxPending ?? 100_000)
  const windowMs = options.windowMs ?? COMPLETION_WINDOW_MS
  return {
    observe (record) {
      const key = keyOf(record)
      if (record.decision === 'step_up') {
        pending.set(key, { decisionId: record.decisionId, at: record.at })
        return
      }
      if (record.decision !== 'allow') return
      const initiated = pending.get(key)
      if (initiated === undefined) return
      pending.delete(key)
      if (record.at - initiated.at > windowMs) return
      void audit.claimOutcome(initiated.decisionId).then(first => {
        if (!first) return
        audit.append({
          at: record.at,
          event: 'auth.step_up_completed',
          decisionId: initiated.decisionId,
          ...(record.tenant !== undefined ? { tenant: record.tenant } : {}),
          subject: record.subject,
          action: record.action,
          initiatedBy: initiated.decisionId,
          detail: `observed: decision ${record.decisionId} allowed ${Math.round((record.at - initiated.at) / 1000)} s after the step-up`
        })
      }, () => undefined)
    }
  }
}

/**
 * `stepup test --coverage`: which policies and which of their triggers no case fired, as
 * `opa test --coverage` shows the rules no test evaluated. It reads the engine's trace of each
 * decision (every matched policy, its triggers in order, fired or not): a trigger counts as
 * exercised when a trace shows it fired or failed closed, for enforced and report-only alike.
 */
import type { Decision } from '../engine/decide.js'
import type { Policy, Trigger } from '../engine/model.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'

interface Tracked { label: string, fired: Map<Policy, Set<number>> }

export class Coverage {
  private readonly sets = new Map<CompiledPolicySet, Tracked>()

  /** `decisions` must carry their trace (the suite runner asks for it). */
  record (set: CompiledPolicySet, label: string, decisions: readonly Decision[]): void {
    let tracked = this.sets.get(set)
    if (!tracked) {
      tracked = { label, fired: new Map(set.policies.map(p => [p, new Set<number>()])) }
      this.sets.set(set, tracked)
    }
    const byId = new Map(set.policies.map(p => [p.id, p]))
    for (const d of decisions) {
      if (d.trace === undefined) throw new Error('coverage: a decision without its trace')
      for (const entry of d.trace.policies) {
        const policy = byId.get(entry.policy)
        if (!policy) continue
        const seen = tracked.fired.get(policy)!
        entry.triggers.forEach((t, i) => { if (t.status !== 'not_fired') seen.add(i) })
      }
    }
  }

  /** Per policy set: how many policies and triggers fired, and what never did (`stepup test --coverage --json`). */
  summary (): CoverageSummary[] {
    return [...this.sets.values()].map(({ label, fired }) => {
      const policies = [...fired.keys()]
      const notFired: CoverageSummary['notFired'] = []
      for (const p of policies) {
        const seen = fired.get(p)!
        if (seen.size === 0) {
          notFired.push({ kind: 'policy', policy: p.id, file: p.file, line: p.line, reportOnly: p.mode === 'report' })
          continue
        }
        p.triggers.forEach((t, i) => {
          if (!seen.has(i)) notFired.push({ kind: 'trigger', policy: p.id, when: i, trigger: describeTrigger(t), file: p.file, line: p.line, reportOnly: p.mode === 'report' })
        })
      }
      return {
        set: label,
        policies: { fired: policies.filter(p => fired.get(p)!.size > 0).length, total: policies.length },
        triggers: { fired: policies.reduce((n, p) => n + fired.get(p)!.size, 0), total: policies.reduce((n, p) => n + p.triggers.length, 0) },
        notFired
      }
    })
  }

  /** One block per policy set: a summary line, then what never fired. */
  report (): string[] {
    const lines: string[] = []
    for (const s of this.summary()) {
      lines.push(`coverage of ${s.set}: ${s.policies.fired}/${s.policies.total} policies fired, ${s.triggers.fired}/${s.triggers.total} triggers`)
      for (const n of s.notFired) {
        lines.push(n.kind === 'policy'
          ? `  not fired: policy ${n.policy} (${n.file}:${n.line})${n.reportOnly ? ' [report-only]' : ''}`
          : `  not fired: trigger ${n.policy} when[${n.when!}] ${n.trigger!} (${n.file}:${n.line})`)
      }
    }
    return lines
  }
}

/** The coverage of one policy set; `file` is relative to the policy folder, as in the text report. */
export interface CoverageSummary {
  set: string
  policies: { fired: number, total: number }
  triggers: { fired: number, total: number }
  notFired: Array<{ kind: 'policy' | 'trigger', policy: string, when?: number, trigger?: string, file: string, line: number, reportOnly: boolean }>
}

export function describeTrigger (t: Trigger): string {
  switch (t.kind) {
    case 'always': return 'always'
    case 'condition': return `condition ${t.program.source}`
    case 'newDevice': return `newDevice { days: ${t.days} }`
    case 'newCountry': return `newCountry { days: ${t.days} }`
    case 'impossibleTravel': return `impossibleTravel { maxSpeedKmh: ${t.maxSpeedKmh}, minDistanceKm: ${t.minDistanceKm}, maxAccuracyKm: ${t.maxAccuracyKm} }`
    case 'riskScore': return `riskScore { atLeast: ${t.atLeast} }`
    case 'ipList': return `ipList { lists: [${t.lists.join(', ')}] }`
    case 'firstAccess': return `firstAccess { resource: ${t.resource}, days: ${t.days} }`
  }
}

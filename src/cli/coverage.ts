/**
 * `stepup test --coverage`: which policies and which of their triggers no case fired, as
 * `opa test --coverage` shows the rules no test evaluated. A trigger counts as exercised when a
 * decision's `reasons` (enforced policies) or `reportOnly` (report-only policies, first fired
 * trigger only) name it; a condition is told apart from its siblings by its source text.
 */
import type { Decision } from '../engine/decide.js'
import type { Policy, Trigger } from '../engine/model.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'

interface Tracked { label: string, fired: Map<Policy, Set<number>> }

const sameCondition = (t: Trigger, detail: string | undefined): boolean =>
  t.kind === 'condition' && detail !== undefined && (detail === t.program.source || detail.startsWith(t.program.source + ': '))

/** Indexes of the triggers of `policy` a reason with this kind and detail can stand for. */
function triggersFor (policy: Policy, kind: string, detail: string | undefined, firstOnly: boolean): number[] {
  const matching = policy.triggers.flatMap((t, i) => (t.kind === kind ? [i] : []))
  if (kind === 'condition' && detail !== undefined) {
    const exact = matching.filter(i => sameCondition(policy.triggers[i]!, detail))
    if (exact.length > 0) return exact
  }
  return firstOnly ? matching.slice(0, 1) : matching
}

export class Coverage {
  private readonly sets = new Map<CompiledPolicySet, Tracked>()

  record (set: CompiledPolicySet, label: string, decisions: readonly Decision[]): void {
    let tracked = this.sets.get(set)
    if (!tracked) {
      tracked = { label, fired: new Map(set.policies.map(p => [p, new Set<number>()])) }
      this.sets.set(set, tracked)
    }
    const byId = new Map(set.policies.map(p => [p.id, p]))
    for (const d of decisions) {
      for (const r of d.reasons) {
        const policy = byId.get(r.policy)
        if (policy) for (const i of triggersFor(policy, r.trigger, r.detail, false)) tracked.fired.get(policy)!.add(i)
      }
      for (const r of d.reportOnly) {
        const policy = byId.get(r.policy)
        if (policy) for (const i of triggersFor(policy, r.trigger, undefined, true)) tracked.fired.get(policy)!.add(i)
      }
    }
  }

  /** One block per policy set: a summary line, then what never fired. */
  report (): string[] {
    const lines: string[] = []
    for (const { label, fired } of this.sets.values()) {
      const policies = [...fired.keys()]
      const firedPolicies = policies.filter(p => fired.get(p)!.size > 0)
      const triggers = policies.reduce((n, p) => n + p.triggers.length, 0)
      const firedTriggers = policies.reduce((n, p) => n + fired.get(p)!.size, 0)
      lines.push(`coverage of ${label}: ${firedPolicies.length}/${policies.length} policies fired, ${firedTriggers}/${triggers} triggers`)
      for (const p of policies) {
        const seen = fired.get(p)!
        if (seen.size === 0) {
          lines.push(`  not fired: policy ${p.id} (${p.file}:${p.line})${p.mode === 'report' ? ' [report-only]' : ''}`)
          continue
        }
        p.triggers.forEach((t, i) => {
          if (!seen.has(i)) lines.push(`  not fired: trigger ${p.id} when[${i}] ${describeTrigger(t)} (${p.file}:${p.line})`)
        })
      }
    }
    return lines
  }
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

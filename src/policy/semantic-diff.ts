/**
 * The semantic difference of two compiled policy sets (`stepup diff`): policies added and
 * removed, and for each policy in both, every change classified as loosened (fewer requests
 * guarded, or a weaker requirement), tightened, or changed (neither is clearly true).
 */
import type { Policy, Trigger } from '../engine/model.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { formatSeconds } from './duration.js'

export type ChangeKind = 'added' | 'removed' | 'loosened' | 'tightened' | 'changed'

export interface PolicyChange {
  kind: ChangeKind
  id: string
  file: string
  line: number
  what: string
}

const triggerKey = (t: Trigger): string => t.kind === 'condition' ? `condition: ${t.program.source}` : JSON.stringify(t)
const describeTrigger = (t: Trigger): string => {
  if (t.kind === 'condition') return `condition ${t.program.source}`
  if (t.kind === 'always') return 'always'
  const { kind, ...params } = t
  return `${kind} ${JSON.stringify(params)}`
}
const factorsText = (f: string[] | null): string => f === null ? 'any factor' : `[${f.join(', ')}]`
const scopeText = (v: string | undefined): string => v ?? '(any)'

/** PSD2: dynamic linking, exemptions (each one added loosens), lockout. */
function comparePayment (a: Policy, b: Policy, add: (kind: ChangeKind, what: string) => void): void {
  if (a.bind !== b.bind) add(b.bind === undefined ? 'loosened' : 'tightened', b.bind === undefined ? 'require.bind: transaction removed' : 'require.bind: transaction added')
  const ea = a.exemptions
  const eb = b.exemptions
  const json = (v: unknown): string => JSON.stringify(v ?? null)
  for (const kind of ['lowValue', 'tra'] as const) {
    if (json(ea?.[kind]) === json(eb?.[kind])) continue
    const what = `exemptions.${kind} ${json(ea?.[kind])} -> ${json(eb?.[kind])}`
    add(eb?.[kind] === undefined ? 'tightened' : ea?.[kind] === undefined ? 'loosened' : 'changed', what)
  }
  if ((ea?.trustedBeneficiary === true) !== (eb?.trustedBeneficiary === true)) add(eb?.trustedBeneficiary === true ? 'loosened' : 'tightened', `exemptions.trustedBeneficiary ${ea?.trustedBeneficiary === true} -> ${eb?.trustedBeneficiary === true}`)
  if (json(ea?.conversion ?? {}) !== json(eb?.conversion ?? {})) add('changed', `exemptions.conversion ${json(ea?.conversion)} -> ${json(eb?.conversion)}`)
  if (json(a.lockout) !== json(b.lockout)) add(b.lockout === undefined ? 'loosened' : a.lockout === undefined ? 'tightened' : 'changed', `lockout ${json(a.lockout)} -> ${json(b.lockout)}`)
}

/** The changes of one policy present in both sets. */
export function comparePolicy (a: Policy, b: Policy): Array<Omit<PolicyChange, 'id' | 'file' | 'line'>> {
  const out: Array<Omit<PolicyChange, 'id' | 'file' | 'line'>> = []
  const add = (kind: ChangeKind, what: string): void => { out.push({ kind, what }) }

  if (a.effect !== b.effect) add(b.effect === 'deny' ? 'tightened' : 'loosened', `effect ${a.effect} -> ${b.effect}`)
  if (a.mode !== b.mode) add(b.mode === 'report' ? 'loosened' : 'tightened', `mode ${a.mode} -> ${b.mode}`)
  if (a.effect === 'step_up' && b.effect === 'step_up') {
    if (a.require.aal !== b.require.aal) add(b.require.aal < a.require.aal ? 'loosened' : 'tightened', `aal ${a.require.aal} -> ${b.require.aal}`)
    if (a.require.maxAge !== b.require.maxAge) add(b.require.maxAge > a.require.maxAge ? 'loosened' : 'tightened', `maxAge ${formatSeconds(a.require.maxAge)} -> ${formatSeconds(b.require.maxAge)}`)
    const fa = a.require.factors
    const fb = b.require.factors
    if (JSON.stringify(fa) !== JSON.stringify(fb)) {
      const what = `factors ${factorsText(fa)} -> ${factorsText(fb)}`
      if (fb === null) add('loosened', what)
      else if (fa === null) add('tightened', what)
      else {
        const wider = fb.some(f => !fa.includes(f))
        const narrower = fa.some(f => !fb.includes(f))
        add(wider && !narrower ? 'loosened' : narrower && !wider ? 'tightened' : 'changed', what)
      }
    }
    comparePayment(a, b, add)
  }
  const gone = a.actions.filter(x => !b.actions.includes(x))
  const come = b.actions.filter(x => !a.actions.includes(x))
  if (gone.length > 0) add('loosened', `actions no longer guarded: ${gone.join(', ')}`)
  if (come.length > 0) add('tightened', `actions now guarded: ${come.join(', ')}`)
  for (const field of ['tenant', 'application'] as const) {
    const x = a.scope[field]
    const y = b.scope[field]
    if (x === y) continue
    const what = `scope.${field} ${scopeText(x)} -> ${scopeText(y)}`
    add(x === undefined ? 'loosened' : y === undefined ? 'tightened' : 'changed', what)
  }
  if (a.overrides !== b.overrides) add('changed', `overrides ${a.overrides ?? '(none)'} -> ${b.overrides ?? '(none)'}`)

  const before = new Map(a.triggers.map(t => [triggerKey(t), t]))
  const after = new Map(b.triggers.map(t => [triggerKey(t), t]))
  const wasAlways = before.has(triggerKey({ kind: 'always' }))
  const isAlways = after.has(triggerKey({ kind: 'always' }))
  if (wasAlways && !isAlways) {
    add('loosened', `fires only when ${b.triggers.map(describeTrigger).join(' or ')} (was: always)`)
  } else if (!wasAlways && isAlways) {
    add('tightened', `fires always (was: ${a.triggers.map(describeTrigger).join(' or ')})`)
  } else if (!wasAlways) {
    for (const [key, t] of before) if (!after.has(key)) add('loosened', `trigger removed: ${describeTrigger(t)}`)
    for (const [key, t] of after) if (!before.has(key)) add('tightened', `trigger added: ${describeTrigger(t)}`)
  }
  return out
}

export function diffSets (a: CompiledPolicySet, b: CompiledPolicySet): PolicyChange[] {
  const old = new Map(a.policies.map(p => [p.id, p]))
  const next = new Map(b.policies.map(p => [p.id, p]))
  const changes: PolicyChange[] = []
  for (const p of b.policies) if (!old.has(p.id)) changes.push({ kind: 'added', id: p.id, file: p.file, line: p.line, what: `${p.effect}${p.effect === 'step_up' ? ` aal ${p.require.aal}` : ''} on ${p.actions.join(', ')}${p.mode === 'report' ? ' (report)' : ''}` })
  for (const p of a.policies) if (!next.has(p.id)) changes.push({ kind: 'removed', id: p.id, file: p.file, line: p.line, what: `was ${p.effect}${p.effect === 'step_up' ? ` aal ${p.require.aal}` : ''} on ${p.actions.join(', ')}` })
  for (const p of b.policies) {
    const before = old.get(p.id)
    if (!before) continue
    for (const c of comparePolicy(before, p)) changes.push({ ...c, id: p.id, file: p.file, line: p.line })
  }
  const order: Record<ChangeKind, number> = { removed: 0, loosened: 1, changed: 2, tightened: 3, added: 4 }
  return changes.sort((x, y) => order[x.kind] - order[y.kind] || x.file.localeCompare(y.file) || x.line - y.line)
}

/**
 * The engine's trace as a tree a person can read: which policies applied, which triggers fired
 * with their figures, what each policy concluded and what merged. A view of the trace, never
 * a second evaluation. When the engine gives no trace, the reasons (fired triggers of enforced
 * policies) are shown the same way, and the tree says that it is the shorter story.
 */
import { DAY, HOUR, MINUTE } from '../engine/units.js'

export type TriggerStatus = 'fired' | 'not_fired' | 'error'
export type PolicyOutcome = 'not_fired' | 'step_up' | 'satisfied' | 'deny' | 'overridden'

/** The trace `decide(…, { trace: true })` returns. */
export interface DecisionTrace {
  policies: Array<{
    policy: string
    file: string
    line: number
    mode: 'enforce' | 'report'
    overriddenBy?: string
    triggers: Array<{ kind: string, status: TriggerStatus, detail?: string, figures?: Record<string, unknown> }>
    outcome: PolicyOutcome
    unmet?: string[]
  }>
  /** `factors`: the classes every restricting policy allows; null when no policy restricts them. */
  merge?: { aal: number, factors: string[] | null, maxAge: number, onceOnly: boolean, scopes?: string[], policies: string[] }
}

export interface ReasonLike {
  policy: string
  trigger: string
  outcome: string
  detail?: string
  figures?: Record<string, unknown>
  unmet?: string[]
}

export interface TreeNode {
  label: string
  /** A short state the page colours: fired, not_fired, error, step_up, satisfied, deny, overridden, report, note. */
  status?: string
  detail?: string
  children?: TreeNode[]
}

/** 300 -> "5 min", 0 -> "0 s (every time)". */
export function formatDuration (seconds: number): string {
  if (seconds === 0) return '0 s (every time)'
  if (seconds % DAY === 0) return `${seconds / DAY} d`
  if (seconds % HOUR === 0) return `${seconds / HOUR} h`
  if (seconds % MINUTE === 0) return `${seconds / MINUTE} min`
  return `${seconds} s`
}

const formatValue = (value: unknown): string => {
  if (value === null || value === undefined) return 'none'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** Figures as leaves: `speedKmh: 325650`; nested objects one level deep (`from: {...}`). */
const figureNodes = (figures: Record<string, unknown> | undefined): TreeNode[] =>
  Object.entries(figures ?? {}).map(([key, value]) => ({ label: `${key}: ${formatValue(value)}`, status: 'figure' }))

const UNMET: Record<string, string> = {
  aal: 'assurance level too low',
  factor: 'no allowed factor proven',
  freshness: 'authenticated too long ago',
  consumed: 'authentication already used (once-only)',
  scope: 'scope missing'
}

const unmetNode = (unmet: string[] | undefined): TreeNode[] =>
  unmet !== undefined && unmet.length > 0
    ? [{ label: `unmet: ${unmet.map(u => UNMET[u] ?? u).join('; ')}`, status: 'unmet' }]
    : []

/** The tree of a trace: one node per policy considered, then the merged requirement. */
export function traceTree (trace: DecisionTrace): TreeNode[] {
  const nodes: TreeNode[] = trace.policies.map(p => {
    const children: TreeNode[] = []
    if (p.overriddenBy !== undefined) children.push({ label: `overridden by ${p.overriddenBy}`, status: 'overridden' })
    for (const trigger of p.triggers) {
      children.push({
        label: `${trigger.kind}: ${trigger.status.replace('_', ' ')}`,
        status: trigger.status,
        ...(trigger.detail !== undefined ? { detail: trigger.detail } : {}),
        ...(trigger.figures !== undefined ? { children: figureNodes(trigger.figures) } : {})
      })
    }
    children.push(...unmetNode(p.unmet))
    return {
      label: `${p.policy}${p.mode === 'report' ? ' (report only)' : ''} → ${p.outcome.replace('_', ' ')}`,
      status: p.outcome,
      detail: `${p.file}:${p.line}`,
      children
    }
  })
  if (trace.merge !== undefined) {
    const m = trace.merge
    const factors = m.factors === null ? 'any factor' : m.factors.length > 0 ? `factors ${m.factors.join(', ')}` : 'no factor class in common'
    const parts = [`AAL ${m.aal}`, factors, `max age ${formatDuration(m.maxAge)}`]
    if (m.onceOnly) parts.push('once-only')
    if (m.scopes !== undefined && m.scopes.length > 0) parts.push(`scopes ${m.scopes.join(' ')}`)
    nodes.push({
      label: `merged requirement: ${parts.join(', ')}`,
      status: 'merge',
      children: [{ label: `from ${m.policies.join(', ')}`, status: 'note' }]
    })
  }
  return nodes
}

/** The tree of the reasons, for an engine that returns no trace: fired triggers only. */
export function reasonsTree (reasons: ReasonLike[], reportOnly: Array<{ policy: string, decision: string, trigger: string }> = []): TreeNode[] {
  const byPolicy = new Map<string, ReasonLike[]>()
  for (const r of reasons) byPolicy.set(r.policy, [...(byPolicy.get(r.policy) ?? []), r])
  const nodes: TreeNode[] = [...byPolicy].map(([policy, fired]) => ({
    label: `${policy} → ${fired[0]!.outcome.replace('_', ' ')}`,
    status: fired[0]!.outcome,
    children: [
      ...fired.map(r => ({
        label: `${r.trigger}: fired`,
        status: 'fired',
        ...(r.detail !== undefined ? { detail: r.detail } : {}),
        ...(r.figures !== undefined ? { children: figureNodes(r.figures) } : {})
      })),
      ...unmetNode(fired.find(r => r.unmet !== undefined)?.unmet)
    ]
  }))
  for (const r of reportOnly) nodes.push({ label: `${r.policy} (report only) → would ${r.decision.replace('_', ' ')}`, status: 'report', children: [{ label: `${r.trigger}: fired`, status: 'fired' }] })
  if (nodes.length === 0) nodes.push({ label: 'no policy fired', status: 'note' })
  return nodes
}

/**
 * The readable explanation `stepup decide` prints: the request and session as the engine saw
 * them, the policies that apply (and those overridden), every trigger of those policies with
 * whether it fired and its figures, and why the result is what it is.
 */
import type { Decision, Reason } from '../engine/decide.js'
import { actionMatches } from '../engine/actions.js'
import type { DecisionRequest, GeoFact, Location, Policy } from '../engine/model.js'
import type { CompiledPolicySet, Plan } from '../engine/policy-set.js'
import { formatSeconds } from '../policy/duration.js'
import { describeTrigger } from './coverage.js'

export interface Explained {
  set: CompiledPolicySet
  plan: Plan
  request: DecisionRequest
  decision: Decision
  decisionId: string
  now: number
  geo: GeoFact
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')

const place = (l: Partial<Location> & { latitude?: unknown, longitude?: unknown }): string => {
  const name = [l.city, l.country].filter(v => typeof v === 'string' && v !== '').join(', ')
  const at = typeof l.latitude === 'number' && typeof l.longitude === 'number' ? `${l.latitude}, ${l.longitude}` : ''
  const accuracy = typeof l.accuracyKm === 'number' ? `; accuracy ${l.accuracyKm} km` : ''
  return name !== '' ? `${name} (${at}${accuracy})` : `${at}${accuracy}`
}

const requirementText = (p: Policy): string => {
  if (p.effect === 'deny') return 'deny'
  const r = p.require
  return `step_up aal ${r.aal}${r.factors ? `, factors [${r.factors.join(', ')}]` : ''}, maxAge ${r.maxAge === 0 ? '0 (every time)' : formatSeconds(r.maxAge)}`
}

const scopeText = (p: Policy): string => {
  const parts = [p.scope.tenant !== undefined ? `tenant ${p.scope.tenant}` : '', p.scope.application !== undefined ? `application ${p.scope.application}` : ''].filter(Boolean)
  return parts.length > 0 ? parts.join(', ') : 'global'
}

const inScope = (p: Policy, r: DecisionRequest): boolean =>
  (p.scope.tenant === undefined || p.scope.tenant === r.tenant) && (p.scope.application === undefined || p.scope.application === r.application)

const figureValue = (key: string, value: unknown): string => {
  if (key === 'lastSeen' && value === null) return 'never'
  if (value !== null && typeof value === 'object' && 'latitude' in value) return place(value as Location)
  return typeof value === 'string' ? value : JSON.stringify(value)
}

const table = (rows: string[][], indent: string): string[] => {
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), [])
  return rows.map(row => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd())
}

/** Whether a reason stands for this trigger of the policy (conditions are told apart by source). */
const reasonFor = (reasons: Reason[], p: Policy, index: number): Reason | undefined => {
  const t = p.triggers[index]!
  return reasons.find(r => r.policy === p.id && r.trigger === t.kind &&
    (t.kind !== 'condition' || r.detail === undefined || r.detail === t.program.source || r.detail.startsWith(t.program.source + ': ')))
}

export function explain (x: Explained): string[] {
  const { set, plan, request: r, decision: d } = x
  const out: string[] = []
  const headline = d.decision === 'allow' ? 'ALLOW' : d.decision === 'step_up' ? 'STEP UP' : 'DENY'
  out.push(`Decision: ${headline} (${d.event})  decisionId ${x.decisionId}`)
  out.push('')

  out.push('Request')
  const requestRows: string[][] = [
    ['action', r.action],
    ['subject', r.subjectId + (r.enrolledFactors ? `  (enrolled: ${r.enrolledFactors.join(', ') || 'none'})` : '')],
    ['tenant', r.tenant ?? '(none: the default tenant)']
  ]
  if (r.application !== undefined) requestRows.push(['application', r.application])
  if (r.ip !== undefined) {
    const g = x.geo
    requestRows.push(['ip', `${r.ip}: ${g.status === 'found' ? place(g.location) : g.status === 'unavailable' ? `no location (${g.reason})` : 'no location (private or unknown address)'}`])
  } else requestRows.push(['ip', '(none: no location; newCountry and impossibleTravel cannot fire)'])
  requestRows.push(['device', r.deviceId !== undefined ? `fingerprint hash ${r.deviceId}` : '(no fingerprint: counts as a new device)'])
  if (r.resource !== undefined) requestRows.push(['resource', r.resource])
  if (Object.keys(r.context).length > 0) requestRows.push(['context', JSON.stringify(r.context)])
  requestRows.push(['time', iso(x.now)])
  out.push(...table(requestRows, '  '))
  out.push('')

  out.push('Session')
  const s = d.session
  const authTime = typeof r.claims.auth_time === 'number' ? ` (auth_time ${iso(r.claims.auth_time)})` : ''
  out.push(...table([
    ['AAL', String(s.aal)],
    ['factors', s.factors.length > 0 ? s.factors.join(', ') : '(none proven by amr)'],
    ['authAge', s.authAge === undefined ? '(no auth_time: never fresh)' : s.authAge < 0 ? `${formatSeconds(-s.authAge)} in the future${authTime}: not fresh beyond the clock skew` : `${formatSeconds(s.authAge)}${authTime}`]
  ], '  '))
  out.push('')

  const applying = [...plan.enforced, ...plan.report]
  const matched = set.policies.filter(p => inScope(p, r) && p.actions.some(a => actionMatches(a, r.action)))
  const overridden = matched.filter(p => !applying.includes(p))
  out.push(`Policies for ${r.action} here: ${applying.length} appl${applying.length === 1 ? 'ies' : 'y'}${overridden.length > 0 ? `, ${overridden.length} overridden` : ''}`)
  if (applying.length === 0 && overridden.length === 0) out.push('  (no policy matches this action in this tenant and application)')
  out.push(...table(applying.map(p => [p.id, p.mode === 'report' ? 'report-only' : 'enforce', scopeText(p), requirementText(p), `${p.file}:${p.line}`]), '  '))
  for (const p of overridden) {
    const by = matched.filter(o => o.overrides === p.id && applying.includes(o)).map(o => o.id)
    const less = matched.filter(o => o.overrides !== undefined && o.overrides === p.overrides && !applying.includes(o) && o !== p)
    out.push(`  ${p.id} (${p.file}:${p.line}) is overridden${by.length > 0 ? ` by ${by.join(', ')}` : ''}${less.length > 0 ? ' (a more specific override of the same policy wins)' : ''}`)
  }
  out.push('')

  if (applying.length > 0) {
    out.push('Triggers')
    for (const p of plan.enforced) {
      out.push(`  ${p.id}`)
      p.triggers.forEach((t, i) => {
        const reason = reasonFor(d.reasons, p, i)
        if (!reason) { out.push(`    not fired  ${describeTrigger(t)}`); return }
        const outcome = reason.outcome === 'step_up' ? `step_up: the session lacks ${(reason.unmet ?? []).join(', ')}` : reason.outcome
        out.push(`    FIRED      ${describeTrigger(t)} -> ${outcome}`)
        if (reason.detail !== undefined && !(t.kind === 'condition' && reason.detail === t.program.source)) out.push(`               ${reason.detail}`)
        for (const [k, v] of Object.entries(reason.figures ?? {})) out.push(`               ${k}: ${figureValue(k, v)}`)
      })
    }
    for (const p of plan.report) {
      const hit = d.reportOnly.find(e => e.policy === p.id)
      out.push(`  ${p.id} (report-only: never changes the decision)`)
      out.push(hit ? `    FIRED      ${hit.trigger} -> would ${hit.decision}` : '    not fired')
    }
    out.push('')
  }

  out.push('Why')
  out.push(...why(x).map(l => '  ' + l))
  return out
}

function why (x: Explained): string[] {
  const { decision: d, set } = x
  const byId = new Map(set.policies.map(p => [p.id, p]))
  const outcomes = new Map<string, Reason>()
  for (const reason of d.reasons) if (!outcomes.has(reason.policy)) outcomes.set(reason.policy, reason)
  const lines: string[] = []
  const challenge = (): void => {
    if (d.message !== undefined) lines.push(`message: ${d.message}`)
    if (d.challenge) {
      lines.push(`challenge: HTTP ${d.challenge.status}${d.challenge.wwwAuthenticate === undefined ? ' (no WWW-Authenticate header)' : ''}`)
      if (d.challenge.wwwAuthenticate !== undefined) lines.push(`  WWW-Authenticate: ${d.challenge.wwwAuthenticate}`)
    }
  }

  const denied = [...outcomes.values()].filter(o => o.outcome === 'deny').map(o => o.policy)
  const unsatisfied = [...outcomes.values()].filter(o => o.outcome === 'step_up')
  const satisfied = [...outcomes.values()].filter(o => o.outcome === 'satisfied').map(o => o.policy)

  if (d.decision === 'allow') {
    if (outcomes.size === 0) {
      lines.push(x.plan.enforced.length === 0
        ? 'No enforced policy applies to this action here: allowed.'
        : 'No trigger of the applying policies fired: allowed.')
    } else {
      lines.push(`Every policy that fired is already satisfied by the session: ${satisfied.join(', ')}.`)
    }
    if (d.consumes) lines.push(`This allow uses up the authentication of ${iso(d.consumes.authTime)} (maxAge 0: once only).`)
    return lines
  }
  if (denied.length > 0) {
    lines.push(`Denied by ${denied.join(', ')} (effect: deny); deny beats step_up.`)
    challenge()
    return lines
  }

  lines.push(`Not satisfied by the session: ${unsatisfied.map(o => `${o.policy} (lacks ${(o.unmet ?? []).join(', ')})`).join('; ')}.`)
  if (satisfied.length > 0) lines.push(`Already satisfied: ${satisfied.join(', ')}.`)
  const policies = unsatisfied.map(o => byId.get(o.policy)).filter((p): p is Policy => p !== undefined)
  if (policies.length > 1) {
    const restricting = policies.filter(p => p.require.factors !== null)
    lines.push(`Merged: aal ${Math.max(...policies.map(p => p.require.aal))} (the highest), ` +
      `factors ${restricting.length === 0 ? 'any class that reaches it' : restricting.map(p => `[${p.require.factors!.join(', ')}]`).join(' ∩ ')}, ` +
      `maxAge ${formatSeconds(Math.min(...policies.map(p => p.require.maxAge)))} (the smallest).`)
  }
  const req = d.required
  if (req) {
    lines.push(`Required: AAL ${req.aal} with ${req.factors.length > 0 ? req.factors.join(' or ') : '(no factor class)'}, ` +
      `${req.maxAge === 0 ? 'a new authentication for this operation (maxAge 0)' : `authenticated within ${formatSeconds(req.maxAge)}`}; acr_values: ${req.acrValues.join(' ')}`)
  }
  if (d.decision === 'deny') {
    lines.push(d.enroll && d.enroll.length > 0
      ? `No enrolled factor can meet it, so it is denied (unmet_authentication_requirements) rather than a step-up that cannot succeed; enroll: ${d.enroll.join(', ')}.`
      : 'No factor class can meet the merged requirement, so it is denied (unmet_authentication_requirements); check the policies with `stepup check`.')
  }
  challenge()
  return lines
}

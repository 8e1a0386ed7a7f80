/**
 * The readable explanation `stepup decide` prints: the request and session as the engine saw
 * them, then a view of the engine's trace — the policies that matched (and those overridden),
 * every trigger of those policies with whether it fired and its figures, the merge, and why the
 * result is what it is. Nothing here matches policies or reads detail strings: the trace says.
 */
import type { Decision, DecisionTrace, PolicyTrace } from '../engine/decide.js'
import type { DecisionRequest, GeoFact, Location, Policy } from '../engine/model.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { formatSeconds } from '../policy/duration.js'
import { describeTrigger } from './coverage.js'

export interface Explained {
  set: CompiledPolicySet
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

const figureValue = (key: string, value: unknown): string => {
  if (key === 'lastSeen' && value === null) return 'never'
  if (value !== null && typeof value === 'object' && 'latitude' in value) return place(value as Location)
  return typeof value === 'string' ? value : JSON.stringify(value)
}

const table = (rows: string[][], indent: string): string[] => {
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), [])
  return rows.map(row => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd())
}

export function explain (x: Explained): string[] {
  const { set, request: r, decision: d } = x
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
  requestRows.push(['policy', `revision ${set.revision}`])
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

  const trace = traceOf(d)
  const byId = new Map(set.policies.map(p => [p.id, p]))
  const policyOf = (entry: PolicyTrace): Policy => byId.get(entry.policy)!
  const applying = trace.policies.filter(e => e.outcome !== 'overridden')
  const overridden = trace.policies.filter(e => e.outcome === 'overridden')
  out.push(`Policies for ${r.action} here: ${applying.length} appl${applying.length === 1 ? 'ies' : 'y'}${overridden.length > 0 ? `, ${overridden.length} overridden` : ''}`)
  if (applying.length === 0 && overridden.length === 0) out.push('  (no policy matches this action in this tenant and application)')
  out.push(...table(applying.map(e => [e.policy, e.mode === 'report' ? 'report-only' : 'enforce', scopeText(policyOf(e)), requirementText(policyOf(e)), `${e.file}:${e.line}`]), '  '))
  for (const e of overridden) {
    const p = policyOf(e)
    // A losing override is itself replaced by the more specific override of the same target.
    const lost = p.overrides !== undefined ? ` (a more specific override of ${p.overrides} wins)` : ''
    out.push(`  ${e.policy} (${e.file}:${e.line}) is overridden by ${e.overriddenBy ?? '?'}${lost}`)
  }
  out.push('')

  if (applying.length > 0) {
    out.push('Triggers')
    for (const e of applying) {
      const p = policyOf(e)
      out.push(e.mode === 'report' ? `  ${e.policy} (report-only: never changes the decision)` : `  ${e.policy}`)
      e.triggers.forEach((t, i) => {
        const described = describeTrigger(p.triggers[i]!)
        if (t.status === 'not_fired') { out.push(`    not fired  ${described}`); return }
        const outcome = e.mode === 'report'
          ? `would ${e.outcome === 'satisfied' ? 'allow' : e.outcome}`
          : e.outcome === 'step_up' ? `step_up: the session lacks ${(e.unmet ?? []).join(', ')}` : e.outcome
        out.push(`    ${t.status === 'error' ? 'ERROR      ' : 'FIRED      '}${described} -> ${outcome}`)
        // A condition's detail is its source (already shown) unless it failed.
        if (t.detail !== undefined && (t.kind !== 'condition' || t.status === 'error')) out.push(`               ${t.detail}`)
        for (const [k, v] of Object.entries(t.figures ?? {})) out.push(`               ${k}: ${figureValue(k, v)}`)
      })
    }
    out.push('')
  }

  out.push('Why')
  out.push(...why(x).map(l => '  ' + l))
  return out
}

/** The trace `stepup decide` asked the service for. */
function traceOf (d: Decision): DecisionTrace {
  if (d.trace === undefined) throw new Error('explain: the decision carries no trace (decide with { trace: true })')
  return d.trace
}

function why (x: Explained): string[] {
  const { decision: d } = x
  const trace = traceOf(d)
  const enforced = trace.policies.filter(e => e.mode === 'enforce')
  const lines: string[] = []
  const challenge = (): void => {
    if (d.message !== undefined) lines.push(`message: ${d.message}`)
    if (d.challenge) {
      lines.push(`challenge: HTTP ${d.challenge.status}${d.challenge.wwwAuthenticate === undefined ? ' (no WWW-Authenticate header)' : ''}`)
      if (d.challenge.wwwAuthenticate !== undefined) lines.push(`  WWW-Authenticate: ${d.challenge.wwwAuthenticate}`)
    }
  }

  const denied = enforced.filter(e => e.outcome === 'deny').map(e => e.policy)
  const unsatisfied = enforced.filter(e => e.outcome === 'step_up')
  const satisfied = enforced.filter(e => e.outcome === 'satisfied').map(e => e.policy)

  if (d.decision === 'allow') {
    if (denied.length + unsatisfied.length + satisfied.length === 0) {
      lines.push(enforced.every(e => e.outcome === 'overridden')
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

  lines.push(`Not satisfied by the session: ${unsatisfied.map(e => `${e.policy} (lacks ${(e.unmet ?? []).join(', ')})`).join('; ')}.`)
  if (satisfied.length > 0) lines.push(`Already satisfied: ${satisfied.join(', ')}.`)
  const merge = trace.merge
  if (merge && merge.policies.length > 1) {
    lines.push(`Merged ${merge.policies.join(', ')}: aal ${merge.aal} (the highest), `
      + `factors ${merge.factors === null ? 'any class that reaches it' : `[${merge.factors.join(', ')}] (every restriction at once)`}, `
      + `maxAge ${merge.onceOnly ? '0 (once only)' : formatSeconds(merge.maxAge)} (the smallest)`
      + `${merge.scopes !== undefined && merge.scopes.length > 0 ? `, scopes ${merge.scopes.join(' ')}` : ''}.`)
  }
  const req = d.required
  if (req) {
    lines.push(`Required: AAL ${req.aal} with ${req.factors.length > 0 ? req.factors.join(' or ') : '(no factor class)'}, `
      + `${req.maxAge === 0 ? 'a new authentication for this operation (maxAge 0)' : `authenticated within ${formatSeconds(req.maxAge)}`}; acr_values: ${req.acrValues.join(' ')}`)
  }
  if (d.decision === 'deny') {
    lines.push(d.enroll && d.enroll.length > 0
      ? `No enrolled factor can meet it, so it is denied (unmet_authentication_requirements) rather than a step-up that cannot succeed; enroll: ${d.enroll.join(', ')}.`
      : 'No factor class can meet the merged requirement, so it is denied (unmet_authentication_requirements); check the policies with `stepup check`.')
  }
  challenge()
  return lines
}

/**
 * Parse -> validate -> compile. Every problem of a folder is collected and reported together,
 * sorted by file and line; a set compiles only when there is no error.
 */
import { createHash } from 'node:crypto'
import { sortProblems, type PolicyProblem, type ProblemCode } from '../errors.js'
import { buildAssurance, DEFAULT_ACR, DEFAULT_FACTORS } from '../engine/assurance.js'
import { buildLearning } from '../engine/learning.js'
import type { AcrMeaning, Assurance, Exemptions, FactorClass, Policy, SignalNeeds, Trigger, UnknownLocation } from '../engine/model.js'
import { needsOf } from '../engine/needs.js'
import { buildPolicySet, type CompiledPolicySet } from '../engine/policy-set.js'
import { DEFAULTS } from '../engine/risk.js'
import { DAY } from '../engine/units.js'
import { compileCondition, ConditionError } from './cel.js'
import { toSeconds } from './duration.js'
import { compileIpLists } from './iplists.js'
import { lintPolicies } from './lint.js'
import { parseSource, type FolderSources, type ParsedFile, type Path } from './source.js'
import { fieldName, validateParsed } from './validate.js'
import { attachGatewayConfig, compileGatewayConfig } from './gateway-config.js'
import type { RawFile, RawPolicy } from './schema.js'

export interface CompileResult {
  set: CompiledPolicySet | undefined
  problems: PolicyProblem[]
}

const MAX_CLOCK_SKEW = 600

const NOT_VERIFICATION = new Map([
  ['user', '"user" is user presence (a tap), not verification: counting it makes a lone security key multi-factor'],
  ['kba', '"kba" (knowledge-based answers) is not an authenticator (NIST SP 800-63B): counting it weakens every AAL']
])

class Reporter {
  constructor (readonly problems: PolicyProblem[]) {}
  error (parsed: ParsedFile, path: Path, message: string, code: ProblemCode, key = false): void {
    this.add(parsed, path, key, { code, message, severity: 'error' })
  }

  warn (parsed: ParsedFile, path: Path, message: string, code: ProblemCode): void {
    this.add(parsed, path, false, { code, message, severity: 'warning' })
  }

  private add (parsed: ParsedFile, path: Path, key: boolean, problem: Pick<PolicyProblem, 'code' | 'message' | 'severity'>): void {
    const { line, col } = parsed.locate(path, key)
    this.problems.push({ file: parsed.file, line, col, field: fieldName(path), ...problem })
  }
}

export function compilePolicies (sources: FolderSources): CompileResult {
  const problems: PolicyProblem[] = []
  const report = new Reporter(problems)
  const files: Array<{ parsed: ParsedFile, raw: RawFile, invalid: Set<number> }> = []
  for (const source of sources.policies) {
    const parsed = parseSource(source, problems)
    if (!parsed) continue
    const validity = validateParsed(parsed, problems)
    if (validity.usable) files.push({ parsed, raw: parsed.data as RawFile, invalid: validity.invalidPolicies })
  }
  const ipLists = compileIpLists(sources.lists, problems)
  const assurance = compileAssurance(files, report)
  const gateway = compileGatewayConfig(files, (parsed, path, message) => report.error(parsed, path, message, 'bad_gateway'))

  const policies: Policy[] = []
  const origin = new Map<Policy, { parsed: ParsedFile, path: Path }>()
  const seen = new Map<string, { file: string, line: number }>()
  const listNames = new Set(ipLists.names)
  for (const { parsed, raw, invalid } of files) {
    (raw.policies ?? []).forEach((rawPolicy, i) => {
      const path: Path = ['policies', i]
      const id = typeof rawPolicy?.id === 'string' ? rawPolicy.id : undefined
      const first = id === undefined ? undefined : seen.get(id)
      if (first) {
        report.error(parsed, [...path, 'id'], `duplicate id "${id}" (first defined at ${first.file}:${first.line})`, 'duplicate_id')
        return
      }
      if (id !== undefined) seen.set(id, { file: parsed.file, line: parsed.locate(path).line })
      if (invalid.has(i)) return
      const policy = compilePolicy(rawPolicy, parsed, path, assurance, listNames, report)
      if (policy) { policies.push(policy); origin.set(policy, { parsed, path }) }
    })
  }
  checkOverrides(policies, origin, report)
  lintPolicies(policies, assurance, sources.lists, (p, sub, message, code) => { const o = origin.get(p)!; report.warn(o.parsed, [...o.path, ...sub], message, code) })

  if (problems.some(p => p.severity === 'error')) return { set: undefined, problems: sortProblems(problems) }
  const hash = createHash('sha256')
  for (const s of [...sources.policies, ...sources.lists]) hash.update(s.file).update('\u0000').update(s.text).update('\u0000')
  const set = buildPolicySet(policies, assurance, ipLists, hash.digest('hex').slice(0, 16), buildLearning(policies, assurance))
  attachGatewayConfig(set, gateway)
  return { set, problems: sortProblems(problems) }
}

function compileAssurance (files: Array<{ parsed: ParsedFile, raw: RawFile }>, report: Reporter): Assurance {
  const holders = files.filter(f => f.raw.assurance !== undefined)
  holders.slice(1).forEach(f => report.error(f.parsed, ['assurance'], `only one file may hold assurance: (already in ${holders[0]!.parsed.file})`, 'bad_assurance', true))
  const holder = holders[0]
  if (!holder) return buildAssurance()
  const raw = holder.raw.assurance!
  const at = (...path: Path): Path => ['assurance', ...path]

  const factors: FactorClass[] = DEFAULT_FACTORS.map(f => ({ ...f, amr: [...f.amr] }))
  const claimed = new Map<string, string>()
  for (const [name, spec] of Object.entries(raw.factors ?? {})) {
    let factor = factors.find(f => f.name === name)
    if (!factor) {
      if (spec.amr === undefined || spec.maxAal === undefined) {
        report.error(holder.parsed, at('factors', name), 'a new factor class needs amr and maxAal', 'bad_assurance')
        continue
      }
      factor = { name, category: 'have', amr: [], maxAal: spec.maxAal, phishingResistant: false, multiFactor: false }
      factors.push(factor)
    }
    if (spec.category !== undefined) factor.category = spec.category
    if (spec.maxAal !== undefined) factor.maxAal = spec.maxAal
    if (spec.phishingResistant !== undefined) factor.phishingResistant = spec.phishingResistant
    if (spec.multiFactor !== undefined) factor.multiFactor = spec.multiFactor
    if (factor.multiFactor && factor.category !== 'have') {
      report.error(holder.parsed, at('factors', name, 'multiFactor'), `only a have class can be multi-factor on its own (this one is ${factor.category})`, 'bad_assurance')
    }
    if (spec.amr) {
      for (const value of spec.amr) {
        const other = claimed.get(value)
        if (other !== undefined && other !== name) report.error(holder.parsed, at('factors', name, 'amr'), `amr value "${value}" is also claimed by ${other}`, 'bad_assurance')
        claimed.set(value, name)
        // An amr value named here moves to this class (e.g. device-bound passkeys -> security_key).
        for (const f of factors) if (f !== factor) f.amr = f.amr.filter(v => v !== value)
      }
      factor.amr = [...new Set([...factor.amr, ...spec.amr])]
    }
  }
  // `user` is presence (a tap), `kba` is not an authenticator: counting them weakens every AAL.
  raw.userVerification?.forEach((value, i) => {
    if (NOT_VERIFICATION.has(value)) report.warn(holder.parsed, at('userVerification', i), NOT_VERIFICATION.get(value)!, 'weak_factor')
  })
  for (const [name, spec] of Object.entries(raw.factors ?? {})) {
    spec.amr?.forEach((value, i) => {
      if (NOT_VERIFICATION.has(value)) report.warn(holder.parsed, at('factors', name, 'amr', i), NOT_VERIFICATION.get(value)!, 'weak_factor')
    })
  }
  const clockSkew = raw.clockSkew === undefined ? undefined : toSeconds(raw.clockSkew)
  if (clockSkew !== undefined && clockSkew > MAX_CLOCK_SKEW) {
    report.error(holder.parsed, at('clockSkew'), `at most ${MAX_CLOCK_SKEW / 60}m: a larger skew would let old authentications pass as fresh`, 'bad_assurance')
  }
  const kept = factors.filter(f => f.amr.length > 0)
  const known = new Set(kept.map(f => f.name))
  const acr: Record<string, AcrMeaning> = {}
  // A default that names a class the configuration removed (its amr values all moved) proves the others.
  for (const [value, m] of Object.entries(DEFAULT_ACR)) acr[value] = { aal: m.aal, proves: m.proves.filter(f => known.has(f)) }
  for (const [value, spec] of Object.entries(raw.acr ?? {})) {
    if (typeof spec === 'number') { acr[value] = { aal: spec, proves: [] }; continue }
    const proves = spec.proves ?? []
    proves.forEach((f, i) => {
      if (!known.has(f)) report.error(holder.parsed, at('acr', value, 'proves', i), `unknown factor class "${f}"; known: ${[...known].join(', ')}`, 'unknown_factor')
    })
    acr[value] = { aal: spec.aal, proves }
  }
  const stepUpClaim = raw.stepUpClaim === undefined ? undefined : { claim: raw.stepUpClaim.claim, maxAge: toSeconds(raw.stepUpClaim.maxAge) }
  if (stepUpClaim !== undefined && stepUpClaim.maxAge === 0) {
    report.error(holder.parsed, at('stepUpClaim', 'maxAge'), 'must be more than 0: the claim says a step-up happened within that time', 'bad_assurance')
  }
  return buildAssurance({
    acr,
    factors: kept,
    ...(raw.userVerification ? { userVerification: raw.userVerification } : {}),
    ...(stepUpClaim !== undefined ? { stepUpClaim } : {}),
    ...(clockSkew !== undefined ? { clockSkew } : {}),
    ...(raw.challengeAcr ? { challengeAcr: raw.challengeAcr } : {}),
    learnFrom: {
      ...(raw.learnFrom?.aal !== undefined ? { aal: raw.learnFrom.aal } : {}),
      ...(raw.learnFrom?.maxAge !== undefined ? { maxAge: toSeconds(raw.learnFrom.maxAge) } : {})
    },
    ...(raw.riskWeights ? { riskWeights: raw.riskWeights } : {}),
    ...(raw.audit?.redactContext ? { audit: { redactContext: raw.audit.redactContext } } : {})
  })
}

function compilePolicy (raw: RawPolicy, parsed: ParsedFile, path: Path, assurance: Assurance, lists: Set<string>, report: Reporter): Policy | undefined {
  let ok = true
  const fail = (sub: Path, message: string, code: ProblemCode): void => { ok = false; report.error(parsed, [...path, ...sub], message, code) }

  raw.actions.forEach((pattern, i) => {
    if ((pattern.match(/(^|\.)\*\*(?=\.|$)/g) ?? []).length > 2) fail(['actions', i], 'at most two "**" segments per pattern', 'bad_action')
  })
  const effect = raw.effect ?? 'step_up'
  const mode = raw.mode ?? 'enforce'
  if (effect === 'deny' && raw.require !== undefined) fail(['require'], 'a deny policy has no requirement; remove require or use effect: step_up', 'conflicting_fields')
  if (mode === 'report' && raw.overrides !== undefined) fail(['overrides'], 'a report-only policy cannot override another policy', 'bad_override')

  const aal = raw.require?.aal ?? 2
  const factors = raw.require?.factors ?? null
  factors?.forEach((name, i) => {
    if (!assurance.factorByName.has(name)) fail(['require', 'factors', i], `unknown factor class "${name}"; known: ${assurance.factors.map(f => f.name).join(', ')}`, 'unknown_factor')
  })
  if (ok && effect === 'step_up') {
    const reachable = (factors ?? assurance.factors.map(f => f.name)).filter(n => (assurance.factorByName.get(n)?.maxAal ?? 0) >= aal)
    if (reachable.length === 0) {
      fail(['require', factors ? 'factors' : 'aal'], `no factor class can meet aal ${aal}${factors ? ` with factors [${factors.join(', ')}]` : ''}: nobody could ever step up`, 'unreachable_requirement')
    }
  }

  const triggers: Trigger[] = []
  const needs: SignalNeeds = { history: false, geo: false, ipLists: false }
  const rawTriggers = raw.when ?? [{ always: null }]
  rawTriggers.forEach((entry, i) => {
    const trigger = compileTrigger(entry, [...path, 'when', i], parsed, lists, report)
    if (!trigger) { ok = false; return }
    triggers.push(trigger)
    mergeNeeds(needs, needsOf(trigger))
  })

  const bind = raw.require?.bind
  if (raw.exemptions !== undefined && bind !== 'transaction') fail(['exemptions'], 'exemptions apply to payments: the policy needs require.bind: transaction', 'conflicting_fields')
  const lockoutWindow = raw.lockout?.window === undefined ? DEFAULT_LOCKOUT.window : toSeconds(raw.lockout.window)
  if (raw.lockout !== undefined && (lockoutWindow < 1 || lockoutWindow > DAY)) fail(['lockout', 'window'], 'between 1s and 1d', 'bad_value')
  if (raw.lockout !== undefined && effect === 'deny') fail(['lockout'], 'a deny policy asks for no step-up to lock', 'conflicting_fields')

  if (!ok) return undefined
  const maxAge = raw.require?.maxAge === undefined ? (bind === 'transaction' ? 300 : 900) : toSeconds(raw.require.maxAge)
  return {
    id: raw.id,
    description: raw.description,
    file: parsed.file,
    line: parsed.locate(path).line,
    scope: { ...raw.scope },
    specificity: ((raw.scope?.application !== undefined ? 2 : 0) + (raw.scope?.tenant !== undefined ? 1 : 0)) as Policy['specificity'],
    overrides: raw.overrides,
    actions: raw.actions,
    triggers,
    effect,
    require: { aal, factors, maxAge, scopes: raw.require?.scopes ?? [] },
    message: raw.message,
    mode,
    needs,
    ...(bind === 'transaction' ? { bind } : {}),
    ...(raw.exemptions !== undefined ? { exemptions: compileExemptions(raw.exemptions) } : {}),
    ...(raw.lockout !== undefined || bind === 'transaction' ? { lockout: { attempts: raw.lockout?.attempts ?? DEFAULT_LOCKOUT.attempts, window: lockoutWindow } } : {})
  }
}

/** PSD2 limits (RTS Art. 16), in EUR cents. */
const LOW_VALUE = { maxAmount: 3000, maxCount: 5, maxTotal: 10000 }
const DEFAULT_LOCKOUT = { attempts: 5, window: 900 }
const cents = (eur: number): number => Math.round(eur * 100)

function compileExemptions (raw: NonNullable<RawPolicy['exemptions']>): Exemptions {
  const lv = raw.lowValue
  return {
    ...(lv === true || typeof lv === 'object'
      ? {
          lowValue: typeof lv === 'object'
            ? { maxAmount: lv.maxAmount === undefined ? LOW_VALUE.maxAmount : cents(lv.maxAmount), maxCount: lv.maxCount ?? LOW_VALUE.maxCount, maxTotal: lv.maxTotal === undefined ? LOW_VALUE.maxTotal : cents(lv.maxTotal) }
            : { ...LOW_VALUE }
        }
      : {}),
    trustedBeneficiary: raw.trustedBeneficiary === true,
    ...(raw.tra ? { tra: { maxAmount: cents(raw.tra.maxAmount), riskScoreBelow: raw.tra.riskScoreBelow } } : {}),
    conversion: { ...raw.conversion }
  }
}

function compileTrigger (entry: Record<string, unknown>, path: Path, parsed: ParsedFile, lists: Set<string>, report: Reporter): Trigger | undefined {
  const [kind, value] = Object.entries(entry)[0]!
  const params = (value ?? {}) as Record<string, number | string | string[] | undefined>
  const num = (name: string, fallback: number): number => (params[name] as number | undefined) ?? fallback
  switch (kind) {
    case 'always':
      return { kind: 'always' }
    case 'condition':
      try {
        return { kind: 'condition', program: compileCondition(value as string) }
      } catch (err) {
        const offset = err instanceof ConditionError && err.offset !== undefined ? ` (at character ${err.offset + 1})` : ''
        report.error(parsed, [...path, 'condition'], `invalid CEL${offset}: ${(err as Error).message}`, 'bad_condition')
        return undefined
      }
    case 'newDevice':
      return { kind: 'newDevice', days: num('days', DEFAULTS.newDevice.days) }
    case 'newCountry':
      return { kind: 'newCountry', days: num('days', DEFAULTS.newCountry.days), unknownLocation: (params.unknownLocation as UnknownLocation | undefined) ?? 'fire' }
    case 'impossibleTravel': {
      const d = DEFAULTS.impossibleTravel
      return { kind: 'impossibleTravel', maxSpeedKmh: num('maxSpeedKmh', d.maxSpeedKmh), minDistanceKm: num('minDistanceKm', d.minDistanceKm), maxAccuracyKm: num('maxAccuracyKm', d.maxAccuracyKm), unknownLocation: (params.unknownLocation as UnknownLocation | undefined) ?? 'fire' }
    }
    case 'riskScore':
      return { kind: 'riskScore', atLeast: params.atLeast as number }
    case 'ipList': {
      const names = params.lists as string[]
      const missing = names.filter(n => !lists.has(n))
      if (missing.length > 0) {
        report.error(parsed, [...path, 'ipList', 'lists'], `no list file lists/${missing[0]}.txt${missing.length > 1 ? ` (nor ${missing.slice(1).join(', ')})` : ''}`, 'unknown_list')
        return undefined
      }
      return { kind: 'ipList', lists: names }
    }
    case 'firstAccess':
      return { kind: 'firstAccess', resource: params.resource as string, days: num('days', DEFAULTS.firstAccess.days) }
    default:
      report.error(parsed, path, `unknown trigger "${kind}"`, 'bad_trigger')
      return undefined
  }
}

const mergeNeeds = (into: SignalNeeds, from: SignalNeeds): void => {
  into.history ||= from.history
  into.geo ||= from.geo
  into.ipLists ||= from.ipLists
}

function checkOverrides (policies: Policy[], origin: Map<Policy, { parsed: ParsedFile, path: Path }>, report: Reporter): void {
  const byId = new Map(policies.map(p => [p.id, p]))
  for (const p of policies) {
    if (p.overrides === undefined) continue
    const { parsed, path } = origin.get(p)!
    const loc = { parsed, path: [...path, 'overrides'] }
    const target = byId.get(p.overrides)
    if (p.overrides === p.id) { report.error(loc.parsed, loc.path, 'a policy cannot override itself', 'bad_override'); continue }
    if (!target) { report.error(loc.parsed, loc.path, `no policy with id "${p.overrides}"`, 'bad_override'); continue }
    // Follow the chain to find cycles: a -> b -> a would make both vanish.
    const chain = new Set([p.id])
    let next: Policy | undefined = target
    while (next?.overrides !== undefined) {
      if (chain.has(next.id)) { report.error(loc.parsed, loc.path, `overrides form a cycle: ${[...chain, next.id].join(' -> ')}`, 'bad_override'); break }
      chain.add(next.id)
      next = byId.get(next.overrides)
    }
  }
}

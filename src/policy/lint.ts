/**
 * Warnings: policies that are valid but cannot do what their author meant. A warning never
 * stops a set from loading; `stepup check` prints it and the server logs it at load.
 *
 * - an `overrides` that can never take effect (disjoint scopes or actions);
 * - a policy that an overriding policy replaces everywhere it applies;
 * - two step-up policies that can apply to the same request but whose requirements cannot be
 *   met together (their `factors` have no class in common, or none that reaches the AAL);
 * - a requirement that no configured acr value expresses (its challenge can be futile);
 * - triggers whose parameters make them never fire;
 * - a condition reading a `context` field without `has()`.
 */
import { LRUCache } from 'lru-cache'
import { acrExpresses } from '../engine/assurance.js'
import { acrValuesFor } from '../engine/challenge.js'
import { MAX_DISTANCE_KM } from '../engine/geo.js'
import type { Assurance, Policy } from '../engine/model.js'
import type { ProblemCode } from '../errors.js'
import type { ListSource, Path } from './source.js'

export type Warn = (policy: Policy, path: Path, message: string, code: ProblemCode) => void

/* ---------- action globs: `*` one segment, `**` one or more ---------- */

type Token = { kind: 'literal', value: string } | { kind: 'one' } | { kind: 'many' }

/** Any segment that no pattern names: one representative for all of them. */
const OTHER = '\u0000'

const tokenCache = new LRUCache<string, Token[]>({ max: 10_000 })
const tokenize = (pattern: string): Token[] => {
  let tokens = tokenCache.get(pattern)
  if (!tokens) {
    tokens = pattern.split('.').map((s): Token => (s === '**' ? { kind: 'many' } : s === '*' ? { kind: 'one' } : { kind: 'literal', value: s }))
    tokenCache.set(pattern, tokens)
  }
  return tokens
}

/** Two different literals at the ends rule out any overlap: an action's first and last segments meet both patterns' first and last tokens. */
const endsDiffer = (ta: Token[], tb: Token[]): boolean => {
  const differ = (x: Token, y: Token): boolean => x.kind === 'literal' && y.kind === 'literal' && x.value !== y.value
  return differ(ta[0]!, tb[0]!) || differ(ta[ta.length - 1]!, tb[tb.length - 1]!)
}

const literalsOf = (patterns: Token[][]): Set<string> => {
  const out = new Set<string>()
  for (const p of patterns) for (const t of p) if (t.kind === 'literal') out.add(t.value)
  return out
}

/** One step of a pattern's automaton: state i is "tokens before i consumed". */
function step (tokens: Token[], states: ReadonlySet<number>, segment: string): Set<number> {
  const next = new Set<number>()
  for (const i of states) {
    const t = tokens[i]
    if (t === undefined) continue
    if (t.kind === 'literal' ? t.value === segment : true) next.add(i + 1)
    if (t.kind === 'many') next.add(i) // `**` may swallow more segments
  }
  return next
}

const accepts = (tokens: Token[], states: ReadonlySet<number>): boolean => states.has(tokens.length)
const keyOf = (sets: ReadonlyArray<ReadonlySet<number>>): string => sets.map(s => [...s].sort((a, b) => a - b).join(',')).join('|')

/** A segment that no pattern names, to show in example actions. */
function filler (literals: ReadonlySet<string>): string {
  for (const candidate of ['x', 'y', 'z', 'any']) if (!literals.has(candidate)) return candidate
  let n = 1
  while (literals.has(`x${n}`)) n++
  return `x${n}`
}

/**
 * An action that both patterns match, or undefined when there is none. The segment alphabet is
 * infinite, but every segment that neither pattern names behaves alike, so the literals of
 * both patterns plus one "other" segment are enough to explore every case.
 */
export function commonAction (a: string, b: string): string | undefined {
  const ta = tokenize(a)
  const tb = tokenize(b)
  if (endsDiffer(ta, tb)) return undefined
  const literals = literalsOf([ta, tb])
  const alphabet = [...literals, OTHER]
  const other = filler(literals)
  const queue: Array<{ sa: Set<number>, sb: Set<number>, path: string[] }> = [{ sa: new Set([0]), sb: new Set([0]), path: [] }]
  const seen = new Set([keyOf([queue[0]!.sa, queue[0]!.sb])])
  while (queue.length > 0) {
    const { sa, sb, path } = queue.shift()!
    for (const segment of alphabet) {
      const na = step(ta, sa, segment)
      const nb = step(tb, sb, segment)
      if (na.size === 0 || nb.size === 0) continue
      const next = [...path, segment === OTHER ? other : segment]
      if (accepts(ta, na) && accepts(tb, nb)) return next.join('.')
      const key = keyOf([na, nb])
      if (seen.has(key)) continue
      seen.add(key)
      queue.push({ sa: na, sb: nb, path: next })
    }
  }
  return undefined
}

/** Whether some action matches both patterns. */
export const patternsOverlap = (a: string, b: string): boolean => commonAction(a, b) !== undefined

/**
 * Whether every action matched by a pattern of `covered` is matched by some pattern of
 * `cover` (exact: the union of `cover` counts, so `a.*` and `a.*.**` together cover `a.**`).
 */
export function patternsCover (cover: readonly string[], covered: readonly string[]): boolean {
  const ta = cover.map(tokenize)
  const tb = covered.map(tokenize)
  const alphabet = [...literalsOf([...ta, ...tb]), OTHER]
  const start = { sa: ta.map(() => new Set([0])), sb: tb.map(() => new Set([0])) }
  const queue = [start]
  const seen = new Set([keyOf([...start.sa, ...start.sb])])
  while (queue.length > 0) {
    const { sa, sb } = queue.shift()!
    for (const segment of alphabet) {
      const nb = tb.map((t, i) => step(t, sb[i]!, segment))
      if (nb.every(s => s.size === 0)) continue
      const na = ta.map((t, i) => step(t, sa[i]!, segment))
      if (nb.some((s, i) => accepts(tb[i]!, s)) && !na.some((s, i) => accepts(ta[i]!, s))) return false
      const key = keyOf([...na, ...nb])
      if (seen.has(key)) continue
      seen.add(key)
      queue.push({ sa: na, sb: nb })
    }
  }
  return true
}

/** Pattern pairs already explored during one lint run: sets repeat the same patterns a lot. */
const explored = new Map<string, string | undefined>()

/** The first pair of patterns (one from each list) that can match a common action, with an example. */
function overlapOf (a: readonly string[], b: readonly string[]): { a: string, b: string, example: string } | undefined {
  for (const pa of a) {
    for (const pb of b) {
      if (endsDiffer(tokenize(pa), tokenize(pb))) continue
      const key = `${pa}\u0000${pb}`
      let example = explored.get(key)
      if (example === undefined && !explored.has(key)) {
        example = commonAction(pa, pb)
        explored.set(key, example)
      }
      if (example !== undefined) return { a: pa, b: pb, example }
    }
  }
  return undefined
}

/* ---------- scopes ---------- */

type Scope = Policy['scope']

/** Some request is inside both scopes. */
export const scopesOverlap = (a: Scope, b: Scope): boolean =>
  (a.tenant === undefined || b.tenant === undefined || a.tenant === b.tenant)
  && (a.application === undefined || b.application === undefined || a.application === b.application)

/** Every request inside `inner` is inside `outer`. */
export const scopeContains = (outer: Scope, inner: Scope): boolean =>
  (outer.tenant === undefined || outer.tenant === inner.tenant)
  && (outer.application === undefined || outer.application === inner.application)

const describeScope = (s: Scope): string =>
  s.tenant === undefined && s.application === undefined
    ? 'everywhere'
    : [s.tenant !== undefined ? `tenant ${s.tenant}` : '', s.application !== undefined ? `application ${s.application}` : ''].filter(Boolean).join(', ')

/* ---------- the warnings ---------- */

const where = (p: Policy): string => `${p.file}:${p.line}`
const list = (items: readonly string[]): string => `[${items.join(', ')}]`

export function lintPolicies (policies: readonly Policy[], assurance: Assurance, lists: readonly ListSource[], warn: Warn): void {
  const byId = new Map(policies.map(p => [p.id, p]))
  explored.clear()
  try {
    checkOverrideReach(policies, byId, warn)
    checkAlwaysOverridden(policies, warn)
    checkConflictingRequirements(policies, assurance, warn)
    checkAcrExpresses(policies, assurance, warn)
    checkTriggers(policies, lists, warn)
  } finally {
    explored.clear()
  }
}

/** (a) An override whose scope or actions never meet those of its target. */
function checkOverrideReach (policies: readonly Policy[], byId: ReadonlyMap<string, Policy>, warn: Warn): void {
  for (const p of policies) {
    if (p.overrides === undefined || p.mode !== 'enforce') continue
    const target = byId.get(p.overrides)
    if (!target || target === p) continue // already an error
    if (!scopesOverlap(p.scope, target.scope)) {
      warn(p, ['overrides'], `never takes effect: this policy applies to ${describeScope(p.scope)}, "${target.id}" (${where(target)}) only to ${describeScope(target.scope)}; no request is inside both`, 'never_takes_effect')
    } else if (!overlapOf(p.actions, target.actions)) {
      warn(p, ['overrides'], `never takes effect: no action matches both this policy's actions ${list(p.actions)} and those of "${target.id}" (${where(target)}) ${list(target.actions)}`, 'never_takes_effect')
    }
  }
}

/** (b) A policy replaced wherever it applies: overriders whose scope holds its scope and whose actions cover its own. */
function checkAlwaysOverridden (policies: readonly Policy[], warn: Warn): void {
  const byTarget = new Map<string, Policy[]>()
  for (const o of policies) {
    if (o.overrides !== undefined && o.mode === 'enforce') byTarget.set(o.overrides, [...(byTarget.get(o.overrides) ?? []), o])
  }
  for (const target of policies) {
    const overriders = (byTarget.get(target.id) ?? []).filter(o => o !== target && scopeContains(o.scope, target.scope))
    if (overriders.length === 0) continue
    if (!patternsCover(overriders.flatMap(o => o.actions), target.actions)) continue
    const names = overriders.map(o => `"${o.id}" (${where(o)}, ${describeScope(o.scope)})`).join(' and ')
    warn(target, [], `never applies: ${names} override${overriders.length === 1 ? 's' : ''} it for every action and scope it has; remove it or narrow the override`, 'never_applies')
  }
}

/** Policies with the same requirement (aal and factors): whether two requirements can be met together depends on nothing else. */
interface RequirementGroup {
  aal: Policy['require']['aal']
  factors: readonly string[] | null
  /** Indexes of the policies (in step-up order, ascending). */
  members: number[]
  /** Groups whose requirement cannot be met together with this one, with what to say, by the group of the earlier policy. */
  conflicts: Map<RequirementGroup, { aal: number, allowed: readonly string[] }>
}

/**
 * The merged requirement of an earlier policy's `p` and a later one's `q` when no factor class
 * meets it; undefined when some class does (or neither side restricts factors).
 */
function unmetTogether (p: RequirementGroup, q: RequirementGroup, assurance: Assurance): { aal: number, allowed: readonly string[] } | undefined {
  if (p.factors === null && q.factors === null) return undefined // every class that reaches the AAL: reachable
  const aal = Math.max(p.aal, q.aal)
  const allowed = p.factors === null ? q.factors! : q.factors === null ? p.factors : p.factors.filter(f => q.factors!.includes(f))
  if (allowed.some(f => (assurance.factorByName.get(f)?.maxAal ?? 0) >= aal)) return undefined
  return { aal, allowed }
}

/** (c) Two step-up policies that can apply to one request whose merged requirement no factor class meets. */
function checkConflictingRequirements (policies: readonly Policy[], assurance: Assurance, warn: Warn): void {
  const stepUps = policies.filter(p => p.mode === 'enforce' && p.effect === 'step_up')
  // Requirements repeat: policies are grouped by requirement, each pair of groups is decided
  // once, and policies are compared one by one only within pairs of groups that conflict, so
  // the cost follows the number of conflicting pairs rather than n².
  const groups = new Map<string, RequirementGroup>()
  const groupOf = stepUps.map((p, i) => {
    const key = `${p.require.aal}|${p.require.factors === null ? '' : `[${p.require.factors.join('\u0000')}`}`
    let group = groups.get(key)
    if (!group) {
      group = { aal: p.require.aal, factors: p.require.factors, members: [], conflicts: new Map() }
      groups.set(key, group)
    }
    group.members.push(i)
    return group
  })
  const all = [...groups.values()]
  for (const g of all) {
    for (const earlier of all) {
      const unmet = unmetTogether(earlier, g, assurance)
      if (unmet) g.conflicts.set(earlier, unmet)
    }
  }
  for (let j = 0; j < stepUps.length; j++) {
    const q = stepUps[j]!
    const group = groupOf[j]!
    if (group.conflicts.size === 0) continue
    // One warning per policy: the first earlier policy it conflicts with, then the others by id.
    const found: Array<{ k: number, unmet: { aal: number, allowed: readonly string[] }, example: string }> = []
    for (const [earlier, unmet] of group.conflicts) {
      for (const k of earlier.members) {
        if (k >= j) break
        const p = stepUps[k]!
        if (p.overrides === q.id || q.overrides === p.id) continue // never both apply where the override holds
        if (!scopesOverlap(p.scope, q.scope)) continue
        const overlap = overlapOf(p.actions, q.actions)
        if (overlap) found.push({ k, unmet, example: overlap.example })
      }
    }
    if (found.length === 0) continue
    found.sort((a, b) => a.k - b.k)
    const { k, unmet: { aal, allowed }, example } = found[0]!
    const p = stepUps[k]!
    const others = found.slice(1).map(f => stepUps[f.k]!.id)
    const why = allowed.length === 0
      ? `their factors ${list(p.require.factors ?? [])} and ${list(q.require.factors ?? [])} have no class in common`
      : `the merged requirement (aal ${aal}, factors ${list(allowed)}) is met by no factor class`
    const scope = mergeScope(p.scope, q.scope)
    const inScope = Object.keys(scope).length > 0 ? ` (${describeScope(scope)})` : ''
    const first = `cannot be met together with "${p.id}" (${where(p)}): both apply to ${example}${inScope} and ${why}; when both fire the request is denied (unmet_authentication_requirements)`
    const named = others.slice(0, MAX_LISTED).map(id => `"${id}"`).join(', ')
    const more = others.length === 0 ? '' : `; likewise with ${named}${others.length > MAX_LISTED ? ` and ${others.length - MAX_LISTED} more` : ''}`
    warn(q, q.require.factors === null ? ['require'] : ['require', 'factors'], first + more, 'conflicting_requirements')
  }
}

/**
 * (f) A requirement whose challenge asks only for acr values that do not express it: a session
 * that already holds one of them cannot be helped by a step-up, so it is denied
 * (unmet_authentication_requirements) rather than asked in a loop. Tell the author while they
 * can still map an acr value that proves the classes (assurance.acr) and ask for it
 * (assurance.challengeAcr).
 */
function checkAcrExpresses (policies: readonly Policy[], assurance: Assurance, warn: Warn): void {
  const seen = new Map<string, string | undefined>()
  for (const p of policies) {
    if (p.effect !== 'step_up') continue
    const { aal, factors } = p.require
    const key = `${aal}|${factors?.join('\u0000') ?? ''}`
    let message = seen.get(key)
    if (!seen.has(key)) {
      const reachable = assurance.factors.filter(f => f.maxAal >= aal && (factors === null || factors.includes(f.name))).map(f => f.name)
      const acrValues = acrValuesFor(aal, reachable, assurance, factors)
      message = reachable.length === 0 || acrValues.some(v => acrExpresses(v, { aal, factors }, assurance))
        ? undefined
        : `no configured acr value expresses this requirement (aal ${aal}${factors ? `, factors ${list(factors)}` : ''}): its challenge asks for ${list(acrValues)}, `
          + `${factors ? 'which do not prove that one of these classes was used' : 'which map to a lower AAL'}, so a session that already holds one of them is denied (unmet_authentication_requirements) instead of stepped up; `
          + `map an acr value that ${factors ? 'proves one of them (assurance.acr: { aal, proves })' : `reaches aal ${aal}`} and list it in assurance.challengeAcr`
      seen.set(key, message)
    }
    if (message !== undefined) warn(p, factors ? ['require', 'factors'] : ['require'], message, 'futile_challenge')
  }
}

/** How many further conflicting policies a warning names. */
const MAX_LISTED = 3

/** The scope inside both (they overlap). */
function mergeScope (a: Scope, b: Scope): Scope {
  const tenant = a.tenant ?? b.tenant
  const application = a.application ?? b.application
  return { ...(tenant !== undefined ? { tenant } : {}), ...(application !== undefined ? { application } : {}) }
}

/** Entries of a list file, as the list compiler counts them. */
const entriesOf = (source: ListSource): number =>
  source.text.split(/\r?\n/).filter(line => line.replace(/#.*/, '').trim() !== '').length

/** (d) Triggers that never fire, and (e) conditions reading `context` fields without `has()`. */
function checkTriggers (policies: readonly Policy[], lists: readonly ListSource[], warn: Warn): void {
  const sizes = new Map(lists.map(l => [l.name, entriesOf(l)]))
  for (const p of policies) {
    p.triggers.forEach((t, i) => {
      const at = (...sub: Path): Path => ['when', i, ...sub]
      switch (t.kind) {
        case 'impossibleTravel':
          if (t.minDistanceKm > MAX_DISTANCE_KM) {
            warn(p, at('impossibleTravel', 'minDistanceKm'), `never fires: no two places on Earth are more than ${Math.round(MAX_DISTANCE_KM).toLocaleString('en-US')} km apart, so every move is under minDistanceKm ${t.minDistanceKm}`, 'never_fires')
          }
          break
        case 'riskScore':
          if (t.atLeast > 1) warn(p, at('riskScore', 'atLeast'), `never fires: the risk score is at most 1 (atLeast ${t.atLeast})`, 'never_fires')
          break
        case 'ipList':
          if (t.lists.every(name => sizes.get(name) === 0)) {
            warn(p, at('ipList', 'lists'), `never fires: ${t.lists.map(n => `lists/${n}.txt`).join(', ')} hold${t.lists.length === 1 ? 's' : ''} no address`, 'never_fires')
          }
          break
        case 'condition': {
          const program = t.program
          if (program.reads.size === 0) {
            // Reads no variable: a constant.
            const r = program.evaluate({})
            if ('value' in r && !r.value) warn(p, at('condition'), 'never fires: the condition reads no variable and is always false', 'never_fires')
          }
          const unguarded = program.unguardedContext
          if (unguarded.length > 0) {
            const first = unguarded[0]!
            warn(p, at('condition'), `reads ${unguarded.join(', ')} without has(): when a request omits ${unguarded.length === 1 ? 'it' : 'one'}, the condition errors and fires the policy (fail closed); guard it: has(${first}) && …`, 'unguarded_context')
          }
          break
        }
        default:
          break
      }
    })
  }
}

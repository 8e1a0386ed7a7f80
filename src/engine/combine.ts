/**
 * Combining fired step-up policies into one requirement: when any is unmet, every
 * fired step-up policy joins the merge, so the user is asked once per action — the highest
 * AAL, the intersection of the allowed factors, the smallest maxAge, the union of the scopes,
 * the message of the strictest policy. Then the challenge: RFC 9470 step-up, RFC 6750
 * insufficient_scope, or a deny when no step-up can help (no class can meet the requirement,
 * or the challenge would ask for what the session already holds).
 */
import { isAssuranceUnmet, isDpopBound, isFresh, type Session, type Unmet } from './assurance.js'
import { acrValuesFor, GENERIC_STEP_UP, insufficientScopeHeader, stepUpHeader, unmetHeader, type Scheme } from './challenge.js'
import type { Decision, MergeTrace, Reason, RequiredAuthentication } from './decide.js'
import type { Assurance, Facts, Policy } from './model.js'
import { authorizationDetailsFor } from './psd2.js'
import type { LRUCache } from 'lru-cache'

export type StepUpOutcome = Pick<Decision, 'decision' | 'event' | 'required' | 'challenge' | 'enroll' | 'message'> & {
  /** Why a step-up became a deny, when it says more than the policies' own reasons. */
  reason?: Reason
  /** How the policies combined (the trace's `merge`). */
  merge: MergeTrace
}

/**
 * A header depends only on its parts, and a compiled set's requirements are few: each header
 * is built once per set (the cache lives on the set and is dropped with it).
 */
function cachedHeader (cache: LRUCache<string, string> | undefined, key: string, build: () => string): string {
  if (cache === undefined) return build()
  let header = cache.get(key)
  if (header === undefined) cache.set(key, header = build())
  return header
}

export const FUTILE_MESSAGE = 'The authentication this action requires cannot be requested from your identity provider.'

const list = (items: Iterable<string>): string => `[${[...items].join(', ')}]`

/** The strictest policy: highest AAL, then smallest maxAge (first in order on a tie). */
export function strictestOf (policies: readonly Policy[]): Policy {
  let best = policies[0]!
  for (const p of policies) {
    if (p.require.aal > best.require.aal || (p.require.aal === best.require.aal && p.require.maxAge < best.require.maxAge)) best = p
  }
  return best
}

export interface MergeInput {
  /** Every fired step-up policy, at least one unmet. */
  policies: readonly Policy[]
  /** What the session lacks for each one. */
  unmetOf: (p: Policy) => readonly Unmet[]
  session: Session
  facts: Facts
  assurance: Assurance
  /** The set's challenge-header cache (none: build each header). */
  headers?: LRUCache<string, string>
}

/** Merges the policies into one requirement and its challenge. */
export function stepUp ({ policies, unmetOf, session, facts, assurance, headers }: MergeInput): StepUpOutcome {
  let aal: 1 | 2 | 3 = 1
  let maxAge = Infinity
  let allowed = null as Set<string> | null
  const scopes = new Set<string>()
  let assuranceUnmet = false
  let scopeUnmet = false
  let bound = false
  let linkUnmet = false
  for (const p of policies) {
    if (p.bind === 'transaction') bound = true
    if (p.require.aal > aal) aal = p.require.aal
    if (p.require.maxAge < maxAge) maxAge = p.require.maxAge
    if (p.require.factors !== null) {
      const next: Set<string> = new Set(p.require.factors)
      allowed = allowed === null ? next : new Set([...allowed].filter(f => next.has(f)))
    }
    for (const s of p.require.scopes) scopes.add(s)
    for (const u of unmetOf(p)) {
      if (u === 'verified_token' || u === 'authorization_details' || u === 'consumed') linkUnmet ||= p.bind === 'transaction'
      if (isAssuranceUnmet(u)) assuranceUnmet = true
      else scopeUnmet = true
    }
  }
  const strictest = strictestOf(policies)
  const reachable = assurance.factors.filter(f => f.maxAal >= aal && (allowed === null || allowed.has(f.name))).map(f => f.name)
  const enrolled = facts.request.enrolledFactors
  const factors = enrolled === undefined ? reachable : reachable.filter(f => enrolled.includes(f))
  const acrValues = acrValuesFor(aal, factors.length > 0 ? factors : reachable, assurance, allowed === null ? null : [...allowed])
  const required: RequiredAuthentication = { aal, factors, maxAge, acrValues }
  if (scopes.size > 0) required.scopes = [...scopes]
  // PSD2: a bound policy in the merge needs the new token to name the payment (RFC 9396).
  const tx = facts.request.transaction
  if (bound && tx !== undefined) required.authorizationDetails = authorizationDetailsFor(tx)
  const scheme: Scheme = isDpopBound(facts.request.claims, facts.request.dpopBound) ? 'DPoP' : 'Bearer'
  const merge: MergeTrace = { aal, factors: allowed === null ? null : [...allowed], maxAge, onceOnly: maxAge === 0, policies: policies.map(p => p.id) }
  if (scopes.size > 0) merge.scopes = [...scopes]
  const deny = (message: string, enroll: string[], reason?: Reason): StepUpOutcome => ({
    decision: 'deny',
    event: 'auth.access_denied',
    required,
    enroll,
    message,
    challenge: { status: 403, wwwAuthenticate: cachedHeader(headers, `u\u0000${scheme}\u0000${message}`, () => unmetHeader(message, scheme)) },
    merge,
    ...(reason ? { reason } : {})
  })

  if (assuranceUnmet && factors.length === 0) {
    const message = reachable.length === 0
      ? 'No authentication method can meet the combined requirements of this action.'
      : `This action needs a stronger authentication method than the ones enrolled: enroll ${reachable.map(f => f.replace(/_/g, ' ')).join(' or ')}.`
    return deny(message, reachable)
  }
  // No futile challenge: asking for an acr the session already holds, with no max_age forcing
  // a new authentication, cannot give a session that satisfies the requirement.
  // A missing dynamic link is answered by a new authorization naming the payment, whatever the acr.
  if (assuranceUnmet && !linkUnmet && session.acr !== undefined && acrValues.includes(session.acr) && maxAge > 0 && isFresh(session, maxAge, assurance.clockSkew)) {
    const what = allowed === null ? `aal ${aal}` : `aal ${aal}, factors ${list(allowed)}`
    return deny(FUTILE_MESSAGE, [], {
      policy: strictest.id,
      trigger: 'challenge',
      outcome: 'deny',
      detail: `no configured acr value expresses the requirement (${what}): the session already holds acr "${session.acr}", one of the acr_values the challenge would send`
    })
  }
  const message = strictest.message ?? GENERIC_STEP_UP
  if (!assuranceUnmet) {
    return {
      decision: 'step_up',
      event: 'auth.step_up_initiated',
      required,
      message,
      challenge: { status: 403, wwwAuthenticate: cachedHeader(headers, `q\u0000${scheme}\u0000${[...scopes].join(' ')}\u0000${message}`, () => insufficientScopeHeader(message, [...scopes], scheme)) },
      merge
    }
  }
  return {
    decision: 'step_up',
    event: 'auth.step_up_initiated',
    required,
    message,
    challenge: {
      status: 401,
      wwwAuthenticate: cachedHeader(headers, `s\u0000${scheme}\u0000${maxAge}\u0000${acrValues.join(' ')}\u0000${scopeUnmet ? [...scopes].join(' ') : ''}\u0000${message}`,
        () => stepUpHeader(message, acrValues, maxAge, scheme, scopeUnmet ? [...scopes] : undefined))
    },
    merge
  }
}

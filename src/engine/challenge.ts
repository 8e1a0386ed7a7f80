/**
 * RFC 9470 / RFC 6750 challenges. Header parameters are quoted strings; the description may
 * hold only printable ASCII without `"` or `\`, so it is transliterated and the full text
 * (any language) travels in `message`.
 */
import type { Decision } from './decide.js'
import { acrExpresses } from './assurance.js'
import type { Assurance } from './model.js'
import { LRUCache } from 'lru-cache'

export const GENERIC_STEP_UP = 'Additional authentication is required.'
export const GENERIC_UNMET = 'The authentication this action requires cannot be met with the enrolled factors.'
export const GENERIC_INVALID_TOKEN = 'The access token is not valid.'

/** The authentication scheme of a challenge: DPoP for DPoP-bound tokens (RFC 9449), else Bearer (RFC 6750). */
export type Scheme = 'Bearer' | 'DPoP'

// Messages come from policies, so there are few of them: remember each one's description.
const descriptions = new LRUCache<string, string>({ max: 1000 })

/** Printable ASCII, no `"` or `\`; falls back to a generic text when too much would be lost. */
export function safeDescription (text: string, fallback: string): string {
  const key = `${fallback}\u0000${text}`
  let out = descriptions.get(key)
  if (out === undefined) {
    out = transliterate(text, fallback)
    descriptions.set(key, out)
  }
  return out
}

function transliterate (text: string, fallback: string): string {
  const flat = text.normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
  const visible = [...flat].filter(c => !/\s/.test(c))
  let kept = 0
  const out = [...flat].map(c => {
    if (/\s/.test(c)) return ' '
    if (c === '"') { kept++; return "'" }
    if (c === '\\') { kept++; return '/' }
    if (c >= '!' && c <= '~') { kept++; return c }
    return ''
  }).join('').replace(/ {2,}/g, ' ').trim()
  if (out === '' || kept < visible.length * 0.8) return fallback
  return out.length > 300 ? out.slice(0, 297) + '...' : out
}

/**
 * The acr values a challenge asks for, in order of preference: the configured list for the
 * requirement's level. When the requirement restricts factors (`allowed`), values that express
 * it (their proven classes all allowed) come first — from that list, else any other configured
 * value that does (say `phrh` for an AAL 2 hardware-key requirement) — then the rest of the
 * level's list as hints. When no configured value expresses it, `stepup check` warns: a session
 * coming back with one of them is then denied (unmet_authentication_requirements), never looped.
 */
export function acrValuesFor (aal: number, factors: string[], assurance: Assurance, allowed: readonly string[] | null = null): string[] {
  const base = baseAcrValues(aal, factors, assurance)
  if (allowed === null) return base
  const requirement = { aal: aal as 1 | 2 | 3, factors: [...allowed] }
  const expresses = (v: string): boolean => acrExpresses(v, requirement, assurance)
  if (base.some(expresses)) return base.filter(expresses).concat(base.filter(v => !expresses(v)))
  const c = assurance.challengeAcr
  const others = [...new Set([...c.aal3, ...c.aal2PhishingResistant, ...c.aal2, ...c.aal1])].filter(v => !base.includes(v) && expresses(v))
  return others.length > 0 ? others.concat(base) : base
}

function baseAcrValues (aal: number, factors: string[], assurance: Assurance): string[] {
  if (aal >= 3) return assurance.challengeAcr.aal3
  if (aal === 2) {
    const allPhr = factors.length > 0 && factors.every(f => assurance.factorByName.get(f)?.phishingResistant === true)
    return allPhr ? assurance.challengeAcr.aal2PhishingResistant : assurance.challengeAcr.aal2
  }
  return assurance.challengeAcr.aal1
}

const quoted = (value: string): string => `"${value.replace(/["\\]/g, '')}"`

const scopeParam = (scopes: readonly string[] | undefined): string =>
  scopes !== undefined && scopes.length > 0 ? `, scope=${quoted(scopes.join(' '))}` : ''

/** RFC 9470: another authentication is needed; `scopes` adds the scope the new token must also hold (RFC 6750 §3). */
export function stepUpHeader (description: string, acrValues: string[], maxAge: number, scheme: Scheme = 'Bearer', scopes?: readonly string[]): string {
  return `${scheme} error="insufficient_user_authentication", error_description=${quoted(safeDescription(description, GENERIC_STEP_UP))}, `
    + `acr_values=${quoted(acrValues.join(' '))}, max_age=${Math.max(0, Math.floor(maxAge))}${scopeParam(scopes)}`
}

/** RFC 6750 §3.1: the session is strong enough, the token lacks scopes (status 403). */
export function insufficientScopeHeader (description: string, scopes: readonly string[], scheme: Scheme = 'Bearer'): string {
  return `${scheme} error="insufficient_scope", error_description=${quoted(safeDescription(description, GENERIC_STEP_UP))}${scopeParam(scopes)}`
}

export function unmetHeader (description: string, scheme: Scheme = 'Bearer'): string {
  return `${scheme} error="unmet_authentication_requirements", error_description=${quoted(safeDescription(description, GENERIC_UNMET))}`
}

/** PSD2 lockout (RTS Art. 4(3)(d)): too many failed step-ups; an RFC 6750-style error, status 403. */
export function lockedHeader (description: string, scheme: Scheme = 'Bearer'): string {
  return `${scheme} error="temporarily_locked", error_description=${quoted(safeDescription(description, 'Too many failed attempts.'))}`
}

export function invalidTokenHeader (description: string, scheme: Scheme = 'Bearer'): string {
  return `${scheme} error="invalid_token", error_description=${quoted(safeDescription(description, GENERIC_INVALID_TOKEN))}`
}

/**
 * The answer for a token that is no session (expired, and every check a token verifier makes):
 * `deny` with a 401 `invalid_token` challenge and a reason naming the check. `description` is
 * for the client (header and message); `detail`, for the reason, must never hold key material.
 */
export function invalidTokenDecision (check: string, description: string, options: { detail?: string, dpop?: boolean } = {}): Decision {
  return {
    decision: 'deny',
    event: 'auth.access_denied',
    challenge: { status: 401, wwwAuthenticate: invalidTokenHeader(description, options.dpop === true ? 'DPoP' : 'Bearer') },
    message: description,
    reasons: [{ policy: TOKEN_REASON, trigger: 'token', outcome: 'deny', detail: `${check}: ${options.detail ?? description}` }],
    session: { aal: 0, factors: [] },
    reportOnly: [],
    policies: []
  }
}

/** The `policy` of a reason about the token itself (no policy id can take this form). */
export const TOKEN_REASON = '(token)'

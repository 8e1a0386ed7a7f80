/**
 * Session assurance (docs/policies.md#assurance): the AAL a session proves through `acr` and `amr`, the factor
 * classes it proves, and whether its authentication is fresh enough.
 */
import type { Aal, Assurance, FactorClass, Requirement } from './model.js'

const NIST = 'http://idmanagement.gov/ns/assurance/aal/'

export const DEFAULT_FACTORS: FactorClass[] = [
  { name: 'security_key', amr: ['hwk'], maxAal: 3, phishingResistant: true },
  { name: 'passkey', amr: ['swk', 'passkey', 'webauthn', 'fido'], maxAal: 2, phishingResistant: true },
  { name: 'totp', amr: ['otp', 'totp'], maxAal: 2, phishingResistant: false },
  { name: 'sms', amr: ['sms', 'tel'], maxAal: 2, phishingResistant: false },
  { name: 'email', amr: ['email'], maxAal: 1, phishingResistant: false },
  { name: 'password', amr: ['pwd'], maxAal: 1, phishingResistant: false }
]

export const DEFAULT_ACR: Record<string, Aal> = {
  [`${NIST}1`]: 1,
  [`${NIST}2`]: 2,
  [`${NIST}3`]: 3,
  // What the AAL 2 phishing-resistant challenge asks for must count when it comes back.
  [`${NIST}2?phishing_resistant=true`]: 2,
  phr: 2,
  phrh: 3,
  'urn:okta:loa:2fa:any': 2
}

export const DEFAULT_USER_VERIFICATION = ['pin', 'fpt', 'face', 'user']

export const DEFAULT_CHALLENGE_ACR = {
  aal1: [`${NIST}1`],
  aal2: [`${NIST}2`],
  aal2PhishingResistant: ['phr', `${NIST}2?phishing_resistant=true`],
  aal3: ['phrh', `${NIST}3`]
}

/** Orders factor classes strongest first. */
export const strongestFirst = (factors: FactorClass[]): FactorClass[] =>
  factors.map((f, i) => ({ f, i }))
    .sort((a, b) => b.f.maxAal - a.f.maxAal || Number(b.f.phishingResistant) - Number(a.f.phishingResistant) || a.i - b.i)
    .map(x => x.f)

export function buildAssurance (parts: {
  acr?: Record<string, Aal>
  factors?: FactorClass[]
  userVerification?: string[]
  clockSkew?: number
  challengeAcr?: Partial<Assurance['challengeAcr']>
  learnFrom?: Partial<Assurance['learnFrom']>
  riskWeights?: Partial<Assurance['riskWeights']>
} = {}): Assurance {
  const factors = strongestFirst(parts.factors ?? DEFAULT_FACTORS)
  const amrToFactor = new Map<string, FactorClass>()
  for (const f of factors) for (const v of f.amr) amrToFactor.set(v, f)
  return {
    acr: new Map(Object.entries(parts.acr ?? DEFAULT_ACR)),
    factors,
    factorByName: new Map(factors.map(f => [f.name, f])),
    amrToFactor,
    userVerification: new Set(parts.userVerification ?? DEFAULT_USER_VERIFICATION),
    clockSkew: parts.clockSkew ?? 30,
    challengeAcr: { ...DEFAULT_CHALLENGE_ACR, ...parts.challengeAcr },
    learnFrom: { aal: 2, maxAge: 900, ...parts.learnFrom },
    riskWeights: { newDevice: 0.2, newCountry: 0.3, impossibleTravel: 0.6, ipList: 0.5, ...parts.riskWeights }
  }
}

export interface Session {
  aal: Aal
  /** Factor classes the `amr` proves (acr alone never proves a factor). */
  factors: Set<string>
  /** Seconds since authentication; undefined when the token has no usable auth time. */
  authAge: number | undefined
  authTime: number | undefined
}

const stringList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []

/** `auth_time`, or `iat` for a session with `su: true` and no `auth_time` (docs/policies.md#assurance). */
export function authTimeOf (claims: Record<string, unknown>): number | undefined {
  const at = claims.auth_time
  if (typeof at === 'number' && Number.isFinite(at)) return at
  if (at === undefined && claims.su === true && typeof claims.iat === 'number' && Number.isFinite(claims.iat)) return claims.iat
  return undefined
}

export function amrAal (amr: string[], assurance: Assurance): { aal: Aal, factors: Set<string> } {
  const classes = new Map<string, FactorClass>()
  let userVerified = false
  let mfa = false
  for (const value of amr) {
    const f = assurance.amrToFactor.get(value)
    if (f) classes.set(f.name, f)
    else if (assurance.userVerification.has(value)) userVerified = true
    else if (value === 'mfa') mfa = true
  }
  const factors = new Set(classes.keys())
  const multi = classes.size >= 2 || userVerified
  let best = 0
  for (const f of classes.values()) best = Math.max(best, f.maxAal)
  let aal: Aal = 0
  if (best === 3 && multi) aal = 3
  else if ((best >= 2 && multi) || mfa) aal = 2
  else if (classes.size > 0) aal = 1
  return { aal, factors }
}

export function evaluateSession (claims: Record<string, unknown>, assurance: Assurance, now: number): Session {
  const acr = typeof claims.acr === 'string' ? assurance.acr.get(claims.acr) ?? 0 : 0
  const fromAmr = amrAal(stringList(claims.amr), assurance)
  const authTime = authTimeOf(claims)
  return {
    aal: Math.max(acr, fromAmr.aal) as Aal,
    factors: fromAmr.factors,
    authTime,
    authAge: authTime === undefined ? undefined : Math.round(now - authTime)
  }
}

/** Fresh when authenticated no longer than maxAge (+ skew) ago, and not in the future beyond the skew. */
export function isFresh (session: Session, maxAge: number, skew: number): boolean {
  if (session.authAge === undefined) return false
  return session.authAge >= -skew && session.authAge <= maxAge + skew
}

export type Unmet = 'aal' | 'factor' | 'freshness' | 'consumed'

/** Why a session does not satisfy a requirement (empty = satisfied). Once-only is checked by the caller. */
export function unmetBy (session: Session, req: Requirement, assurance: Assurance): Unmet[] {
  const unmet: Unmet[] = []
  if (session.aal < req.aal) unmet.push('aal')
  if (req.factors !== null && !req.factors.some(f => session.factors.has(f))) unmet.push('factor')
  if (!isFresh(session, req.maxAge, assurance.clockSkew)) unmet.push('freshness')
  return unmet
}

/**
 * Session assurance (NIST SP 800-63B): the AAL a session proves through `acr` and
 * `amr`, the factor classes it proves, its scopes, and whether its authentication is fresh.
 *
 * Factor classes have a category (know, have, are). A session is multi-factor when it holds a
 * `have` factor and, besides it, something you know or are (a password, a PIN, a biometric), or
 * a `have` class that verifies the user itself (`multiFactor`, a passkey). Two `have` factors are
 * one factor category, so single-factor; `user` (presence) and `kba` count for nothing.
 */
import type { Aal, AcrMeaning, Assurance, FactorClass, IssuerAssurance, Requirement, StepUpClaim } from './model.js'

const NIST = 'http://idmanagement.gov/ns/assurance/aal/'

const factor = (name: string, category: FactorClass['category'], amr: string[], maxAal: 1 | 2 | 3, phishingResistant: boolean, multiFactor = false): FactorClass =>
  ({ name, category, amr, maxAal, phishingResistant, multiFactor })

export const DEFAULT_FACTORS: FactorClass[] = [
  factor('security_key', 'have', ['hwk'], 3, true),
  factor('smart_card', 'have', ['sc'], 3, true),
  factor('passkey', 'have', ['passkey', 'webauthn', 'fido'], 2, true, true),
  factor('software_key', 'have', ['swk', 'pop'], 2, false),
  factor('totp', 'have', ['otp', 'totp'], 2, false),
  factor('sms', 'have', ['sms', 'tel'], 2, false),
  factor('email', 'have', ['email'], 1, false),
  factor('password', 'know', ['pwd'], 1, false)
]

const PHISHING_RESISTANT = ['passkey', 'security_key', 'smart_card']

export const DEFAULT_ACR: Record<string, AcrMeaning> = {
  [`${NIST}1`]: { aal: 1, proves: [] },
  [`${NIST}2`]: { aal: 2, proves: [] },
  [`${NIST}3`]: { aal: 3, proves: [] },
  // What the AAL 2 phishing-resistant challenge asks for must count when it comes back.
  [`${NIST}2?phishing_resistant=true`]: { aal: 2, proves: PHISHING_RESISTANT },
  [`${NIST}2?hspd12=true`]: { aal: 2, proves: ['smart_card'] },
  phr: { aal: 2, proves: PHISHING_RESISTANT },
  phrh: { aal: 3, proves: ['security_key', 'smart_card'] },
  'urn:okta:loa:2fa:any': { aal: 2, proves: [] }
}

/** User verification without a class of its own: a PIN (know), biometrics (are). Not `user`: that is presence. */
export const DEFAULT_USER_VERIFICATION = ['pin', 'fpt', 'face', 'iris', 'retina', 'vbm']

export const DEFAULT_CHALLENGE_ACR = {
  aal1: [`${NIST}1`],
  aal2: [`${NIST}2`],
  aal2PhishingResistant: ['phr', `${NIST}2?phishing_resistant=true`],
  aal3: ['phrh', `${NIST}3`]
}

/** `mfa` with no named `have` factor: an unnamed one of AAL 2 that is multi-factor by itself. */
const MFA_STAND_IN = factor('(mfa)', 'have', ['mfa'], 2, false, true)

/** Orders factor classes strongest first. */
export const strongestFirst = (factors: FactorClass[]): FactorClass[] =>
  factors.map((f, i) => ({ f, i }))
    .sort((a, b) => b.f.maxAal - a.f.maxAal || Number(b.f.phishingResistant) - Number(a.f.phishingResistant) || a.i - b.i)
    .map(x => x.f)

const toMeaning = (v: Aal | { aal: Aal, proves?: readonly string[] }): AcrMeaning =>
  typeof v === 'number' ? { aal: v, proves: [] } : { aal: v.aal, proves: v.proves ?? [] }

export function buildAssurance (parts: {
  acr?: Record<string, Aal | { aal: Aal, proves?: readonly string[] }>
  factors?: FactorClass[]
  userVerification?: string[]
  stepUpClaim?: StepUpClaim
  clockSkew?: number
  challengeAcr?: Partial<Assurance['challengeAcr']>
  learnFrom?: Partial<Assurance['learnFrom']>
  riskWeights?: Partial<Assurance['riskWeights']>
  audit?: Partial<Assurance['audit']>
} = {}): Assurance {
  const factors = strongestFirst(parts.factors ?? DEFAULT_FACTORS)
  const amrToFactor = new Map<string, FactorClass>()
  for (const f of factors) for (const v of f.amr) amrToFactor.set(v, f)
  return {
    acr: new Map(Object.entries(parts.acr ?? DEFAULT_ACR).map(([k, v]) => [k, toMeaning(v)])),
    factors,
    factorByName: new Map(factors.map(f => [f.name, f])),
    amrToFactor,
    userVerification: new Set(parts.userVerification ?? DEFAULT_USER_VERIFICATION),
    stepUpClaim: parts.stepUpClaim,
    clockSkew: parts.clockSkew ?? 30,
    challengeAcr: { ...DEFAULT_CHALLENGE_ACR, ...parts.challengeAcr },
    learnFrom: { aal: 2, maxAge: 900, ...parts.learnFrom },
    riskWeights: { newDevice: 0.2, newCountry: 0.3, impossibleTravel: 0.6, ipList: 0.5, ...parts.riskWeights },
    audit: { redactContext: parts.audit?.redactContext ?? [] }
  }
}

export interface Session {
  aal: Aal
  /** The acr value, when it is a string. */
  acr: string | undefined
  /** Factor classes the `amr` names. */
  factors: Set<string>
  /** Factor classes the `acr` proves (one of them was used). */
  acrProves: ReadonlySet<string>
  /** Whether `amr` shows two factor categories (see the top of this file). */
  multiFactor: boolean
  /** Seconds since authentication; undefined when the token has no usable auth time. */
  authAge: number | undefined
  /** `auth_time`; undefined without it (a step-up claim gives an age, never a time). */
  authTime: number | undefined
  /** OAuth scopes the token holds (`scope` and `scp`). */
  scopes: ReadonlySet<string>
}

const stringList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []

/** `auth_time`, when it is a number. `iat` never stands in for it: a refreshed token is not a new authentication. */
export function authTimeOf (claims: Record<string, unknown>): number | undefined {
  const at = claims.auth_time
  return typeof at === 'number' && Number.isFinite(at) ? at : undefined
}

export interface AmrAssurance { aal: Aal, factors: Set<string>, multiFactor: boolean }

/** The AAL `amr` alone justifies, the classes it names, and whether it is multi-factor. */
export function amrAssurance (amr: readonly string[], assurance: Assurance): AmrAssurance {
  const factors = new Set<string>()
  const haves: FactorClass[] = []
  let verified = false // something you know or are, besides a have factor
  let mfa = false
  for (const value of amr) {
    const f = assurance.amrToFactor.get(value)
    if (f) {
      if (factors.has(f.name)) continue
      factors.add(f.name)
      if (f.category === 'have') haves.push(f)
      else verified = true
    } else if (assurance.userVerification.has(value)) verified = true
    else if (value === 'mfa') mfa = true
  }
  // `mfa` stands for an unnamed have factor only when amr names none: named factors are the evidence.
  if (mfa && haves.length === 0) haves.push(MFA_STAND_IN)
  // The best have factor that makes the session multi-factor.
  let best = 0
  for (const h of haves) if ((verified || h.multiFactor) && h.maxAal > best) best = h.maxAal
  const aal: Aal = best >= 3 ? 3 : best === 2 ? 2 : best === 1 || factors.size > 0 ? 1 : 0
  return { aal, factors, multiFactor: best > 0 }
}

/** The meaning of an acr value: the issuer's own map first, then `assurance.acr`. */
export function acrMeaning (acr: string, assurance: Assurance, issuer?: IssuerAssurance): AcrMeaning | undefined {
  const own = issuer?.acr
  if (own !== undefined && Object.hasOwn(own, acr)) {
    const m = own[acr]!
    return { aal: m.aal, proves: m.proves ?? [] }
  }
  return assurance.acr.get(acr)
}

const NO_SCOPES: ReadonlySet<string> = new Set()
const EMPTY: ReadonlySet<string> = new Set()

/** `scope` (space-separated, RFC 9068) and `scp` (a list, or a space-separated string as Entra ID sends it). */
export function scopesOf (claims: Record<string, unknown>): ReadonlySet<string> {
  if (claims.scope === undefined && claims.scp === undefined) return NO_SCOPES
  const out = new Set<string>()
  for (const v of [claims.scope, claims.scp]) {
    const items = typeof v === 'string' ? v.split(' ') : stringList(v)
    for (const s of items) if (s !== '') out.add(s)
  }
  return out
}

export function evaluateSession (claims: Record<string, unknown>, assurance: Assurance, now: number, issuer?: IssuerAssurance): Session {
  const acr = typeof claims.acr === 'string' ? claims.acr : undefined
  const meaning = acr === undefined ? undefined : acrMeaning(acr, assurance, issuer)
  const fromAmr = amrAssurance(stringList(claims.amr), assurance)
  const authTime = authTimeOf(claims)
  let authAge = authTime === undefined ? undefined : Math.round(now - authTime)
  if (authTime === undefined) {
    // A step-up claim counts only as declared: by the token's issuer, else by assurance.stepUpClaim.
    const declared = issuer !== undefined ? issuer.stepUpClaim : assurance.stepUpClaim
    if (declared !== undefined && claims[declared.claim] === true) authAge = declared.maxAge
  }
  return {
    aal: Math.max(meaning?.aal ?? 0, fromAmr.aal) as Aal,
    acr,
    factors: fromAmr.factors,
    acrProves: meaning && meaning.proves.length > 0 ? new Set(meaning.proves) : EMPTY,
    multiFactor: fromAmr.multiFactor,
    authTime,
    authAge,
    scopes: scopesOf(claims)
  }
}

/**
 * The session proves one of the `allowed` factor classes: its amr names one, or its acr proves
 * a set of classes that lies wholly inside `allowed`. An acr such as `phr` says that *one of*
 * passkey, security key or smart card was used, not which: it cannot prove a restriction to
 * security keys alone.
 */
export function provesOneOf (session: Session, allowed: readonly string[]): boolean {
  for (const f of allowed) if (session.factors.has(f)) return true
  if (session.acrProves.size === 0) return false
  for (const f of session.acrProves) if (!allowed.includes(f)) return false
  return true
}

/** Fresh when authenticated no longer than maxAge (+ skew) ago, and not in the future beyond the skew. */
export function isFresh (session: Session, maxAge: number, skew: number): boolean {
  // Once-only needs an authentication time to consume: a step-up claim (an age only) never satisfies it.
  if (maxAge === 0 && session.authTime === undefined) return false
  return isWithin(session, maxAge, skew)
}

/** Authenticated within maxAge (+ skew), and not in the future beyond the skew. */
export function isWithin (session: Session, maxAge: number, skew: number): boolean {
  if (session.authAge === undefined) return false
  return session.authAge >= -skew && session.authAge <= maxAge + skew
}

/** `exp` in the past beyond the skew: the token is no session at all. */
export function expiredAt (claims: Record<string, unknown>, now: number, skew: number): number | undefined {
  const exp = claims.exp
  return typeof exp === 'number' && Number.isFinite(exp) && now > exp + skew ? exp : undefined
}

/** The token is DPoP-bound (RFC 9449): the verifier says so, or it carries a `cnf.jkt` confirmation. */
export function isDpopBound (claims: Record<string, unknown>, dpopBound: boolean | undefined): boolean {
  if (dpopBound === true) return true
  const cnf = claims.cnf
  return cnf !== null && typeof cnf === 'object' && typeof (cnf as Record<string, unknown>).jkt === 'string'
}

/**
 * What a session lacks. `verified_token` and `authorization_details` are PSD2 dynamic linking:
 * the claims did not come from a verified token, or its authorization_details do not name the payment.
 */
export type Unmet = 'aal' | 'factor' | 'freshness' | 'consumed' | 'scope' | 'verified_token' | 'authorization_details'

/** The kinds of unmet that another authentication answers (a scope is asked for, not authenticated). */
export const isAssuranceUnmet = (u: Unmet): boolean => u !== 'scope'

/** Why a session does not satisfy a requirement (empty = satisfied). Once-only is checked by the caller. */
export function unmetBy (session: Session, req: Requirement, assurance: Assurance): Unmet[] {
  const unmet: Unmet[] = []
  if (session.aal < req.aal) unmet.push('aal')
  if (req.factors !== null && !provesOneOf(session, req.factors)) unmet.push('factor')
  if (!isFresh(session, req.maxAge, assurance.clockSkew)) unmet.push('freshness')
  if (req.scopes.length > 0 && !req.scopes.every(s => session.scopes.has(s))) unmet.push('scope')
  return unmet
}

/** Whether the acr value expresses the requirement: a session holding it (fresh) would satisfy it. */
export function acrExpresses (acr: string, req: Pick<Requirement, 'aal' | 'factors'>, assurance: Assurance, issuer?: IssuerAssurance): boolean {
  const m = acrMeaning(acr, assurance, issuer)
  if (!m || m.aal < req.aal) return false
  if (req.factors === null) return true
  // One of the classes it proves was used: it expresses a restriction only when all of them are allowed.
  const allowed = req.factors
  return m.proves.length > 0 && m.proves.every(f => allowed.includes(f))
}

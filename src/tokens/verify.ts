/**
 * Verifies a user's token against the issuers of the policy set, with `jose`. Every failure is
 * a named check ("exp: expired", "signature: does not verify"): the reason a caller sees, never
 * key material or a library's message. Verified tokens are remembered by their SHA-256 until
 * min(exp, 5 min), so a warm token costs one hash and one map lookup.
 */
import { createHash } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose'
import { LRUCache } from 'lru-cache'
import type { IssuerConfig } from './issuer.js'
import { IssuerKeys, KeysUnavailable, UnknownKid } from './keys.js'
import { introspect } from './introspect.js'

export const MAX_TOKEN_BYTES = 16 * 1024
const VERIFIED_TTL_S = 300
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

export type Verification =
  | { ok: true, claims: Record<string, unknown>, issuer: IssuerConfig }
  | { ok: false, status: 401 | 503, reason: string }

interface Cached { claims: Record<string, unknown>, issuer: IssuerConfig, until: number }

export interface VerifierOptions {
  /** Milliseconds since the epoch. */
  now: () => number
  /** Per issuer request (discovery, JWKS, introspection). Default 3 s. */
  fetchTimeoutMs?: number
  /** Verified tokens remembered. Default 10,000. */
  cacheSize?: number
  /** Where `clientSecretEnv` is read (the config module hands it over). */
  secrets?: Record<string, string | undefined>
}

const invalid = (reason: string): Verification => ({ ok: false, status: 401, reason })
const sha = (token: string): string => createHash('sha256').update(token).digest('base64url')

export class TokenVerifier {
  private readonly keys = new Map<string, IssuerKeys>()
  /** One cache per issuers list: a reload that changes issuers starts from nothing. */
  private caches = new WeakMap<readonly IssuerConfig[], LRUCache<string, Cached>>()
  private readonly timeoutMs: number

  constructor (private readonly options: VerifierOptions) {
    this.timeoutMs = options.fetchTimeoutMs ?? 3000
  }

  /** Fetches the keys of every issuer now (at start and after a reload), without waiting. */
  prefetch (issuers: readonly IssuerConfig[]): void {
    for (const issuer of issuers) this.keysOf(issuer).prefetch()
  }

  /** Fetches made for an issuer (for tests and diagnostics). */
  fetchesOf (issuer: IssuerConfig): number { return this.keysOf(issuer).fetches }

  async verify (token: string, issuers: readonly IssuerConfig[], clockSkew: number): Promise<Verification> {
    const nowMs = this.options.now()
    const now = nowMs / 1000
    let cache = this.caches.get(issuers)
    if (!cache) { cache = new LRUCache({ max: this.options.cacheSize ?? 10_000 }); this.caches.set(issuers, cache) }
    const digest = sha(token)
    const hit = cache.get(digest)
    if (hit && now < hit.until) return { ok: true, claims: hit.claims, issuer: hit.issuer }

    const result = COMPACT_JWS.test(token) ? await this.verifyJws(token, issuers, clockSkew, nowMs) : await this.verifyOpaque(token, issuers, now)
    if (result.ok) {
      const exp = typeof result.claims.exp === 'number' ? result.claims.exp : now
      const ttl = COMPACT_JWS.test(token) ? VERIFIED_TTL_S : 60
      cache.set(digest, { claims: result.claims, issuer: result.issuer, until: Math.min(exp, now + ttl) })
    }
    return result
  }

  private keysOf (issuer: IssuerConfig): IssuerKeys {
    const id = `${issuer.issuer}\u0000${issuer.jwksUri ?? ''}`
    let keys = this.keys.get(id)
    if (!keys) {
      keys = new IssuerKeys({ issuer: issuer.issuer, jwksUri: issuer.jwksUri, now: this.options.now, timeoutMs: this.timeoutMs })
      this.keys.set(id, keys)
    }
    return keys
  }

  private async verifyJws (token: string, issuers: readonly IssuerConfig[], clockSkew: number, nowMs: number): Promise<Verification> {
    let header: ReturnType<typeof decodeProtectedHeader>
    let payload: JWTPayload
    try {
      header = decodeProtectedHeader(token)
      payload = decodeJwt(token)
    } catch {
      return invalid('format: not a well-formed JWT (base64url JSON header and payload)')
    }
    if (typeof header.alg !== 'string' || header.alg === 'none' || /^HS/i.test(header.alg)) return invalid('alg: not an accepted algorithm')
    if (header.typ !== undefined && !/^(application\/)?(at\+jwt|jwt)$/i.test(String(header.typ))) return invalid('typ: must be at+jwt or JWT')
    if (typeof payload.iss !== 'string') return invalid('iss: missing')
    const issuer = issuers.find(i => i.issuer === payload.iss)
    if (!issuer) return invalid('iss: not a configured issuer')
    if (!issuer.algorithms.includes(header.alg)) return invalid('alg: not accepted for this issuer')
    if (typeof payload.exp !== 'number') return invalid('exp: missing')
    const keys = this.keysOf(issuer)
    try {
      const { payload: verified } = await jwtVerify(token, (h, t) => keys.keyFor(h, t), {
        issuer: issuer.issuer,
        audience: issuer.audience,
        algorithms: issuer.algorithms as never,
        clockTolerance: clockSkew,
        currentDate: new Date(nowMs),
        requiredClaims: ['exp']
      })
      return { ok: true, claims: verified as Record<string, unknown>, issuer }
    } catch (err) {
      return explainFailure(err)
    }
  }

  private async verifyOpaque (token: string, issuers: readonly IssuerConfig[], now: number): Promise<Verification> {
    const candidates = issuers.filter(i => i.introspection !== undefined)
    if (candidates.length === 0) return invalid('format: not a compact JWS and no issuer introspects opaque tokens')
    if (!/^[\x21-\x7e]+$/.test(token)) return invalid('format: not a token (characters outside printable ASCII)')
    let unavailable = false
    for (const issuer of candidates) {
      const secret = this.options.secrets?.[issuer.introspection!.clientSecretEnv]
      const answer = await introspect(token, issuer.introspection!, secret, this.timeoutMs)
      if (answer === 'unavailable') { unavailable = true; continue }
      if (answer === 'inactive') continue
      if (answer.iss !== undefined && answer.iss !== issuer.issuer) continue
      if (typeof answer.exp === 'number' && answer.exp < now) return invalid('exp: expired')
      if (!audienceMatches(answer.aud, issuer.audience)) return invalid('aud: not for this audience')
      return { ok: true, claims: { ...answer, iss: issuer.issuer }, issuer }
    }
    return unavailable ? { ok: false, status: 503, reason: 'issuer introspection unavailable' } : invalid('active: the token is not active')
  }
}

function audienceMatches (aud: unknown, wanted: string[]): boolean {
  if (aud === undefined) return true // RFC 7662: aud is optional; the issuer vouched for the token
  const values = Array.isArray(aud) ? aud : [aud]
  return values.some(v => typeof v === 'string' && wanted.includes(v))
}

function explainFailure (err: unknown): Verification {
  if (err instanceof KeysUnavailable) return { ok: false, status: 503, reason: 'issuer keys unavailable' }
  if (err instanceof UnknownKid) return invalid('kid: no key of the issuer matches')
  if (err instanceof errors.JWTExpired) return invalid('exp: expired')
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim
    if (claim === 'nbf') return invalid('nbf: not yet valid')
    if (claim === 'aud') return invalid('aud: not for this audience')
    if (claim === 'iss') return invalid('iss: not the configured issuer')
    if (claim === 'iat') return invalid('iat: in the future')
    if (claim === 'exp') return invalid('exp: missing or not a number')
    return invalid(`${/^[a-z_]{1,20}$/.test(claim) ? claim : 'claims'}: not valid`)
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return invalid('alg: not accepted')
  if (err instanceof errors.JWSSignatureVerificationFailed) return invalid('signature: does not verify')
  if (err instanceof errors.JWKSMultipleMatchingKeys) return invalid('kid: several keys match; the token must name its kid')
  if (err instanceof errors.JWTInvalid) return invalid('payload: not a JSON object of claims')
  return invalid('format: not a valid JWS')
}

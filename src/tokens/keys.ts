/**
 * An issuer's signing keys: fetched (OIDC discovery or `jwksUri`), cached as Cache-Control
 * allows (30 s to 24 h; 10 min when it says nothing), refetched on an unknown `kid` at most once
 * per 30 s. A failed fetch keeps the keys already known; with none known, verification fails
 * closed (KeysUnavailable), and the next attempt waits out the same 30 s, so an outage costs one
 * timeout per 30 s, not one per request.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose'
import { fetchJson, FetchFailed } from './fetch-json.js'

export const REFETCH_INTERVAL_MS = 30_000
const MIN_TTL_MS = 30_000
const MAX_TTL_MS = 24 * 3600_000
const DEFAULT_TTL_MS = 600_000

export class KeysUnavailable extends Error {}
export class UnknownKid extends Error {}

type KeyResolver = ReturnType<typeof createLocalJWKSet>

export interface KeySourceOptions {
  issuer: string
  jwksUri: string | undefined
  now: () => number
  timeoutMs: number
}

export class IssuerKeys {
  private resolver: KeyResolver | undefined
  private expiresAt = 0
  private lastAttempt = -Infinity
  private inflight: Promise<void> | undefined
  private jwksUri: string | undefined
  /** Fetches done (tests and metrics read it). */
  fetches = 0

  constructor (private readonly options: KeySourceOptions) {
    this.jwksUri = options.jwksUri
  }

  /** Starts a fetch now (at load), without waiting for it. */
  prefetch (): void {
    if (this.resolver === undefined && this.inflight === undefined) void this.refresh().catch(() => {})
  }

  /** The key for this JWS header; throws KeysUnavailable or UnknownKid. */
  async keyFor (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<Awaited<ReturnType<KeyResolver>>> {
    const now = this.options.now()
    if (this.resolver === undefined) {
      if (this.inflight) await this.inflight.catch(() => {})
      else if (now - this.lastAttempt >= REFETCH_INTERVAL_MS) await this.refresh().catch(() => {})
      if (this.resolver === undefined) throw new KeysUnavailable('issuer keys unavailable')
    } else if (now >= this.expiresAt && this.inflight === undefined && now - this.lastAttempt >= MIN_TTL_MS) {
      void this.refresh().catch(() => {}) // stale keys keep serving while fresh ones arrive
    }
    try {
      return await this.resolver(header, token)
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err
    }
    if (this.inflight) await this.inflight.catch(() => {})
    else if (this.options.now() - this.lastAttempt >= REFETCH_INTERVAL_MS) await this.refresh().catch(() => {})
    try {
      return await this.resolver(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey) throw new UnknownKid('no key of the issuer matches the token\'s kid and alg')
      throw err
    }
  }

  private refresh (): Promise<void> {
    this.inflight ??= this.fetchKeys().finally(() => { this.inflight = undefined })
    return this.inflight
  }

  private async fetchKeys (): Promise<void> {
    this.lastAttempt = this.options.now()
    this.fetches++
    const { timeoutMs } = this.options
    if (this.jwksUri === undefined) {
      const base = this.options.issuer.replace(/\/+$/, '')
      const { body } = await fetchJson(`${base}/.well-known/openid-configuration`, timeoutMs)
      const doc = body as { issuer?: unknown, jwks_uri?: unknown }
      if (doc === null || typeof doc !== 'object' || doc.issuer !== this.options.issuer) throw new FetchFailed('discovery: issuer does not match')
      if (typeof doc.jwks_uri !== 'string' || !/^https?:\/\//.test(doc.jwks_uri)) throw new FetchFailed('discovery: no jwks_uri')
      this.jwksUri = doc.jwks_uri
    }
    const { body, maxAge } = await fetchJson(this.jwksUri, timeoutMs)
    const jwks = body as JSONWebKeySet
    if (jwks === null || typeof jwks !== 'object' || !Array.isArray(jwks.keys) || jwks.keys.length > 100) throw new FetchFailed('not a JWK set')
    const usable = { keys: jwks.keys.filter(k => k !== null && typeof k === 'object' && typeof k.kty === 'string' && k.kty !== 'oct' && (k.use === undefined || k.use === 'sig')) }
    let resolver: KeyResolver
    try { resolver = createLocalJWKSet(usable) } catch { throw new FetchFailed('not a JWK set') }
    this.resolver = resolver
    const ttl = maxAge === undefined ? DEFAULT_TTL_MS : Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, maxAge * 1000))
    this.expiresAt = this.options.now() + ttl
  }
}

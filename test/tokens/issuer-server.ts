/**
 * A real HTTP issuer for token tests: OIDC discovery and a JWKS on a free loopback port, keys
 * made by jose, and switches for the ways an issuer goes wrong (slow, junk, down).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose'

export interface TestKey { kid: string, alg: string, privateKey: CryptoKey, jwk: JWK }

export async function makeKey (alg: string, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return { kid, alg, privateKey, jwk }
}

export class TestIssuer {
  server: Server
  url = ''
  keys: TestKey[] = []
  jwksHits = 0
  mode: 'ok' | 'slow' | 'junk' | 'down' | 'huge' = 'ok'
  cacheControl: string | undefined = undefined

  constructor () {
    this.server = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ issuer: this.url, jwks_uri: `${this.url}/jwks` }))
        return
      }
      if (req.url === '/jwks') {
        this.jwksHits++
        if (this.mode === 'down') { res.statusCode = 500; res.end('down'); return }
        if (this.mode === 'slow') { setTimeout(() => { if (!res.destroyed) res.end(JSON.stringify({ keys: [] })) }, 10_000).unref(); return }
        if (this.mode === 'junk') { res.end('{"keys": [{"kty": "RSA", "n": 12}], garbage'); return }
        if (this.mode === 'huge') { res.end(JSON.stringify({ keys: [], pad: 'x'.repeat(2_000_000) })); return }
        res.setHeader('content-type', 'application/json')
        if (this.cacheControl !== undefined) res.setHeader('cache-control', this.cacheControl)
        res.end(JSON.stringify({ keys: this.keys.map(k => k.jwk) }))
        return
      }
      res.statusCode = 404
      res.end()
    })
  }

  async start (): Promise<this> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  async sign (claims: JWTPayload, options: { key?: TestKey, typ?: string, nowS?: number, header?: Record<string, unknown> } = {}): Promise<string> {
    const key = options.key ?? this.keys[0]!
    const now = options.nowS ?? Math.floor(Date.now() / 1000)
    const jwt = new SignJWT({ iss: this.url, aud: 'https://api.example.com', iat: now, exp: now + 600, ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: options.typ ?? 'at+jwt', ...options.header })
    return jwt.sign(key.privateKey)
  }
}

/** A policy folder text with this issuer and a few policies. */
export const issuerPolicies = (issuerUrl: string, extra = ''): string => `
issuers:
  - issuer: ${issuerUrl}
    audience: [https://api.example.com]
    tenant: { claim: org_id }
${extra}
policies:
  - id: payouts
    actions: [payments.payout]
    require: { aal: 2, maxAge: 15m }
    message: Confirm the payout.
`

/** A compiled `issuers:` entry: what a token of this issuer must satisfy and what it means. */
import type { Aal } from '../engine/model.js'

export const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const
/** Asymmetric JWS algorithms an issuer may list; `none` and HS* are never accepted. */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const

export type ClaimSource = { claim: string } | { value: string }

export interface IssuerConfig {
  issuer: string
  audience: string[]
  /** Keys: this URL, else OIDC discovery from `issuer`. */
  jwksUri: string | undefined
  algorithms: string[]
  tenant: ClaimSource | undefined
  application: ClaimSource | undefined
  acr: Record<string, { aal: Aal, proves?: string[] }> | undefined
  stepUpClaim: { claim: string, maxAge: number } | undefined
  introspection: { endpoint: string, clientId: string, clientSecretEnv: string } | undefined
}

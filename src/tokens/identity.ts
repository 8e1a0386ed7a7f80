/**
 * Who the session is: from a verified token, or from raw claims a trusted caller sends. Tenant
 * and application come from the token when its issuer names them, and a request field that
 * disagrees is refused. A caller's scope (its `callers:` entry) is checked on the result.
 */
import { ApiError, badRequest } from '../errors.js'
import type { DecisionRequest } from '../engine/model.js'
import type { CallerScope, GatewayConfig } from '../policy/gateway-config.js'
import type { ClaimSource, IssuerConfig } from './issuer.js'
import { MAX_TOKEN_BYTES, type TokenVerifier } from './verify.js'

export interface IdentityInput {
  /** The token, and the field it came in (named by errors). */
  token?: { value: string, field: string, scheme: 'Bearer' | 'DPoP' }
  claims?: Record<string, unknown>
  tenant?: string
  application?: string
}

export type Identity =
  | { kind: 'session', claims: Record<string, unknown>, tenant: string | undefined, application: string | undefined, issuer?: IssuerConfig, dpopBound: boolean }
  | { kind: 'refused', status: 401 | 503, reason: string }

const claimValue = (source: ClaimSource | undefined, claims: Record<string, unknown>, what: string): string | undefined | Error => {
  if (source === undefined) return undefined
  if ('value' in source) return source.value
  const v = claims[source.claim]
  if (typeof v === 'string' && v.length > 0 && v.length <= 200 && /^[^\p{Cc}]+$/u.test(v)) return v
  return new Error(`${source.claim}: the issuer names the ${what} in this claim, and the token has no usable value`)
}

export async function resolveIdentity (input: IdentityInput, config: GatewayConfig, caller: CallerScope | undefined, verifier: TokenVerifier, clockSkew: number): Promise<Identity> {
  if (input.token === undefined) {
    if (input.claims !== undefined) {
      const trusted = caller?.trustClaims ?? config.issuers.length === 0
      if (!trusted) throw new ApiError('claims_not_accepted', 'claims: this caller may not send raw claims; send the user\'s token in "token"')
    }
    return { kind: 'session', claims: input.claims ?? {}, tenant: input.tenant, application: input.application, dpopBound: false }
  }
  const { value, field, scheme } = input.token
  if (Buffer.byteLength(value) > MAX_TOKEN_BYTES) throw badRequest(field, `longer than ${MAX_TOKEN_BYTES} bytes`)
  const verified = await verifier.verify(value, config.issuers, clockSkew)
  if (!verified.ok) return { kind: 'refused', status: verified.status, reason: verified.reason }
  const { claims, issuer } = verified
  // A token names its user: without `sub` it could be applied to any subject a caller names.
  if (typeof claims.sub !== 'string' || claims.sub === '') return { kind: 'refused', status: 401, reason: 'sub: missing' }
  const tenant = claimValue(issuer.tenant, claims, 'tenant')
  const application = claimValue(issuer.application, claims, 'application')
  if (tenant instanceof Error) return { kind: 'refused', status: 401, reason: tenant.message }
  if (application instanceof Error) return { kind: 'refused', status: 401, reason: application.message }
  if (tenant !== undefined && input.tenant !== undefined && input.tenant !== tenant) throw badRequest('tenant', 'differs from the tenant of the verified token')
  if (application !== undefined && input.application !== undefined && input.application !== application) throw badRequest('application', 'differs from the application of the verified token')
  const cnf = claims.cnf as { jkt?: unknown } | undefined
  return {
    kind: 'session',
    claims,
    tenant: tenant ?? input.tenant,
    application: application ?? input.application,
    issuer,
    dpopBound: scheme === 'DPoP' || (cnf !== null && typeof cnf === 'object' && typeof cnf.jkt === 'string')
  }
}

/** The engine's view of the issuer that verified the token. */
export function issuerFacts (identity: Extract<Identity, { kind: 'session' }>): Pick<DecisionRequest, 'issuer' | 'dpopBound' | 'tokenVerified'> {
  const out: Pick<DecisionRequest, 'issuer' | 'dpopBound' | 'tokenVerified'> = {}
  // Only a token the service verified carries an issuer: raw claims from a caller never do.
  if (identity.issuer !== undefined) out.tokenVerified = true
  if (identity.issuer && (identity.issuer.acr !== undefined || identity.issuer.stepUpClaim !== undefined)) {
    out.issuer = {}
    if (identity.issuer.acr !== undefined) out.issuer.acr = identity.issuer.acr
    if (identity.issuer.stepUpClaim !== undefined) out.issuer.stepUpClaim = identity.issuer.stepUpClaim
  }
  if (identity.dpopBound) out.dpopBound = true
  return out
}

/** A caller outside its scope: 403 caller_scope. */
export function checkCallerScope (caller: CallerScope | undefined, tenant: string | undefined, application: string | undefined): void {
  if (!caller) return
  if (caller.tenants !== undefined && (tenant === undefined || !caller.tenants.includes(tenant))) {
    throw new ApiError('caller_scope', `tenant: caller "${caller.name}" may not ask about ${tenant === undefined ? 'the default tenant' : `tenant "${tenant}"`}`)
  }
  if (caller.applications !== undefined && (application === undefined || !caller.applications.includes(application))) {
    throw new ApiError('caller_scope', `application: caller "${caller.name}" may not ask about ${application === undefined ? 'requests without an application' : `application "${application}"`}`)
  }
}

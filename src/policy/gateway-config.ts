/**
 * The `issuers:`, `callers:` and `routes:` sections of a policy folder, compiled beside the
 * policies and swapped with them on reload. Any number of files may hold each section; an
 * issuer or a caller named twice is an error at the second place.
 */
import type { CompiledPolicySet } from '../engine/policy-set.js'
import type { Aal } from '../engine/model.js'
import { compileRoutes, type RawRoute, type RouteTable } from '../gateway/routes.js'
import { DEFAULT_ALGORITHMS, type ClaimSource, type IssuerConfig } from '../tokens/issuer.js'
import { toSeconds } from './duration.js'
import type { ParsedFile, Path } from './source.js'

export interface CallerScope {
  name: string
  tenants: string[] | undefined
  applications: string[] | undefined
  trustClaims: boolean | undefined
  explain: boolean
}

export interface GatewayConfig {
  issuers: readonly IssuerConfig[]
  callers: ReadonlyMap<string, CallerScope>
  routes: RouteTable
  /** The routes as declared: the table holds functions, so a set crossing threads carries these. */
  routeSources: readonly RawRoute[]
}

/** The gateway sections as plain data (structured-clone safe), for a set built in the loading worker. */
export interface PortableGatewayConfig {
  issuers: IssuerConfig[]
  callers: Array<[string, CallerScope]>
  routes: RawRoute[]
}

export const toPortableGateway = (config: GatewayConfig): PortableGatewayConfig =>
  ({ issuers: [...config.issuers], callers: [...config.callers], routes: [...config.routeSources] })

/** The routes were checked where the folder was compiled: building the table again cannot fail. */
export const fromPortableGateway = (portable: PortableGatewayConfig): GatewayConfig =>
  ({ issuers: portable.issuers, callers: new Map(portable.callers), routes: compileRoutes(portable.routes, () => {}), routeSources: portable.routes })

interface RawIssuer {
  issuer: string
  audience: string[]
  jwksUri?: string
  algorithms?: string[]
  tenant?: ClaimSource
  application?: ClaimSource
  acr?: Record<string, { aal: Aal, proves?: string[] }>
  stepUpClaim?: { claim: string, maxAge: number | string }
  introspection?: IssuerConfig['introspection']
}
interface RawCaller { name: string, tenants?: string[], applications?: string[], trustClaims?: boolean, explain?: boolean }
interface RawSections { issuers?: RawIssuer[], callers?: RawCaller[], routes?: RawRoute[] }

export type ReportError = (parsed: ParsedFile, path: Path, message: string) => void

const EMPTY: GatewayConfig = { issuers: [], callers: new Map(), routes: compileRoutes([], () => {}), routeSources: [] }
const attached = new WeakMap<CompiledPolicySet, GatewayConfig>()

/** The gateway sections of a compiled set (empty for a set built without them). */
export const gatewayConfigOf = (set: CompiledPolicySet): GatewayConfig => attached.get(set) ?? EMPTY

export const attachGatewayConfig = (set: CompiledPolicySet, config: GatewayConfig): void => { attached.set(set, config) }

export function compileGatewayConfig (files: Array<{ parsed: ParsedFile, raw: unknown }>, error: ReportError): GatewayConfig {
  const issuers: IssuerConfig[] = []
  const callers = new Map<string, CallerScope>()
  const routes: RawRoute[] = []
  const routeOrigin: Array<{ parsed: ParsedFile, path: Path }> = []
  const issuerAt = new Map<string, string>()
  for (const { parsed, raw } of files) {
    const sections = raw as RawSections
    sections.issuers?.forEach((r, i) => {
      const seen = issuerAt.get(r.issuer)
      if (seen !== undefined) { error(parsed, ['issuers', i, 'issuer'], `issuer already declared in ${seen}`); return }
      issuerAt.set(r.issuer, parsed.file)
      if (r.jwksUri === undefined && !r.issuer.startsWith('https://') && !/^http:\/\/(127\.|localhost[:/]|\[::1\])/.test(r.issuer)) {
        error(parsed, ['issuers', i, 'issuer'], 'OIDC discovery needs an https:// issuer (or set jwksUri)')
      }
      issuers.push({
        issuer: r.issuer,
        audience: r.audience,
        jwksUri: r.jwksUri,
        algorithms: r.algorithms ?? [...DEFAULT_ALGORITHMS],
        tenant: r.tenant,
        application: r.application,
        acr: r.acr,
        stepUpClaim: r.stepUpClaim === undefined ? undefined : { claim: r.stepUpClaim.claim, maxAge: toSeconds(r.stepUpClaim.maxAge) },
        introspection: r.introspection
      })
    })
    sections.callers?.forEach((r, i) => {
      if (callers.has(r.name)) { error(parsed, ['callers', i, 'name'], `caller "${r.name}" is already declared`); return }
      callers.set(r.name, { name: r.name, tenants: r.tenants, applications: r.applications, trustClaims: r.trustClaims, explain: r.explain ?? false })
    })
    sections.routes?.forEach((r, i) => { routes.push(r); routeOrigin.push({ parsed, path: ['routes', i] }) })
  }
  const table = compileRoutes(routes, (index, message) => {
    const o = routeOrigin[index]!
    error(o.parsed, [...o.path, 'match', 'path'], message)
  })
  return { issuers, callers, routes: table, routeSources: routes }
}

/**
 * A gateway's question, answered in the gateway's terms: the original request is mapped to an
 * action by the routes, the user's token verified, and the decision becomes a status with
 * headers: allow 200 + X-Stepup-*, step_up 401 + RFC 9470 challenge, deny 403, fault 503.
 * Bodies never carry reasons' figures or details.
 */
import type { FastifyRequest } from 'fastify'
import type { Decision } from '../engine/decide.js'
import { badRequest, type ErrorCode } from '../errors.js'
import { normalizeDecideBody, type DecideBody } from '../contract/index.js'
import { uuidv7 } from '../ids.js'
import type { DecisionService } from '../service.js'
import { tokenDenial } from '../tokens/answer.js'
import { checkCallerScope, issuerFacts, resolveIdentity } from '../tokens/identity.js'
import { currentGateway, scopeOf, type Access } from './access.js'
import type { ClientIpResolver } from './client-ip.js'
import { tokenFrom, type OriginalRequest } from './original.js'

export interface GatewayDeps {
  service: DecisionService
  access: Access
  clientIp: ClientIpResolver
  deviceHeader: string
  /** Read when the header is absent (a front end that keeps its device id in a cookie). */
  deviceCookie?: string | undefined
}

export interface GatewayAnswer {
  status: 200 | 401 | 403 | 503
  headers: Record<string, string>
  body?: Record<string, unknown>
}

/** The subject of a request that carries no token: it never has history or a session. */
export const ANONYMOUS = '(anonymous)'

export async function gatewayDecision (deps: GatewayDeps, request: FastifyRequest, original: OriginalRequest): Promise<GatewayAnswer> {
  const { access } = deps
  const { set, gateway } = currentGateway(access)
  const scope = scopeOf(request, gateway)
  const headers = request.headers
  const mapped = gateway.routes.map({ method: original.method, host: original.host, url: original.url, headers })
  const token = tokenFrom(headers)
  if (token === 'malformed') return refusal(request, access, 401, 'format: the Authorization header carries no single token')
  const identity = await resolveIdentity({
    token: token === undefined ? undefined : { value: token.value, field: 'authorization', scheme: token.scheme },
    application: mapped.application
  }, gateway, scope, access.verifier, set.assurance.clockSkew)
  if (identity.kind === 'refused') return refusal(request, access, identity.status, identity.reason, token?.scheme === 'DPoP')
  // Without a token the tenant is unknown and there is no subject: nothing of a tenant can be learnt or read,
  // so a tenant-scoped gateway may still ask whether anonymous requests pass.
  if (token !== undefined) checkCallerScope(scope, identity.tenant, identity.application)

  const fingerprint = headers[deps.deviceHeader]
  const fromHeader = Array.isArray(fingerprint) ? fingerprint[0] : fingerprint
  const device = fromHeader ?? (deps.deviceCookie === undefined ? undefined : cookieValue(headers.cookie, deps.deviceCookie))
  const field = fromHeader !== undefined || deps.deviceCookie === undefined ? deps.deviceHeader : `cookie ${deps.deviceCookie}`
  if (device !== undefined && (device.length > 1024 || device === '')) throw badRequest(field, 'at most 1024 characters, not empty')
  const body: DecideBody = {
    action: mapped.action,
    claims: identity.claims,
    ...(token === undefined ? { subject: { id: ANONYMOUS } } : {}),
    ...(identity.tenant !== undefined ? { tenant: identity.tenant } : {}),
    ...(identity.application !== undefined ? { application: identity.application } : {}),
    ...(mapped.resource !== undefined ? { resource: mapped.resource } : {}),
    ...(device !== undefined ? { device: { fingerprint: device } } : {}),
    context: mapped.context
  }
  const ip = deps.clientIp(request.socket.remoteAddress, headers['x-forwarded-for'])
  if (ip !== undefined) body.ip = ip
  const normalized = normalizeDecideBody(body, set.assurance)
  Object.assign(normalized, issuerFacts(identity))
  const { decisionId, decision } = await deps.service.decide(normalized)
  return toGatewayAnswer(decisionId, decision, token === undefined ? undefined : normalized.subjectId)
}

function refusal (request: FastifyRequest, access: Access, status: 401 | 503, reason: string, dpop = false): GatewayAnswer {
  const decisionId = uuidv7(access.now())
  request.log.info({ decisionId, event: 'auth.access_denied', decision: 'deny', token: reason }, 'decision')
  return toGatewayAnswer(decisionId, tokenDenial(status, reason, dpop), undefined, true)
}

/** Header values: printable ASCII only (a subject id may hold anything else). */
const headerSafe = (s: string): string => (/^[\x20-\x7e]*$/.test(s) ? s : encodeURIComponent(s))

export function toGatewayAnswer (decisionId: string, decision: Decision, subject: string | undefined, tokenRefused = false): GatewayAnswer {
  const headers: Record<string, string> = { 'x-stepup-decision': decision.decision, 'x-stepup-decision-id': decisionId }
  if (decision.decision === 'allow') {
    if (subject !== undefined) headers['x-stepup-subject'] = headerSafe(subject)
    headers['x-stepup-aal'] = String(decision.session.aal)
    return { status: 200, headers }
  }
  const challenge = decision.challenge
  if (tokenRefused) {
    if (challenge?.wwwAuthenticate !== undefined) headers['www-authenticate'] = challenge.wwwAuthenticate
    const status = (challenge?.status as number) === 503 ? 503 : 401
    if (status === 503) headers['retry-after'] = '5'
    return { status, headers, body: { error: status === 503 ? 'temporarily_unavailable' : 'invalid_token', message: decision.message ?? '', decisionId } }
  }
  if (decision.decision === 'step_up') {
    if (subject === undefined) {
      // No token where a policy needs a session: RFC 6750 asks for authentication with no error code.
      headers['www-authenticate'] = 'Bearer realm="stepup-pdp"'
      return { status: 401, headers, body: { error: 'unauthorized' satisfies ErrorCode, message: 'This action needs you to sign in.', decisionId, required: decision.required } }
    }
    if (challenge?.wwwAuthenticate !== undefined) headers['www-authenticate'] = challenge.wwwAuthenticate
    const code = /error="([a-z_]+)"/.exec(challenge?.wwwAuthenticate ?? '')?.[1] ?? 'insufficient_user_authentication'
    return { status: (challenge?.status as number) === 403 ? 403 : 401, headers, body: { error: code, message: decision.message ?? '', decisionId, required: decision.required } }
  }
  if (challenge?.wwwAuthenticate !== undefined) headers['www-authenticate'] = challenge.wwwAuthenticate
  const code = /error="([a-z_]+)"/.exec(challenge?.wwwAuthenticate ?? '')?.[1] ?? 'access_denied'
  const body: Record<string, unknown> = { error: code, message: decision.message ?? 'This action is not allowed.', decisionId }
  if (decision.enroll !== undefined) body.enroll = decision.enroll
  if (decision.required !== undefined) body.required = decision.required
  return { status: 403, headers, body }
}

/**
 * The value of one cookie in a `Cookie` header (RFC 6265 §5.4: `name=value` pairs separated by
 * `; `), the first of that name. Only a name lookup is needed here, so no cookie library: the
 * value is used as an opaque fingerprint, hashed before it is stored.
 */
export function cookieValue (header: string | string[] | undefined, name: string): string | undefined {
  const all = Array.isArray(header) ? header.join('; ') : header
  if (all === undefined) return undefined
  for (const pair of all.split(';')) {
    const eq = pair.indexOf('=')
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue
    const raw = pair.slice(eq + 1).trim()
    return raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw
  }
  return undefined
}

/**
 * Gateway endpoints: `/authz/auth-request` (nginx), `/authz/forward-auth` (Traefik, Caddy,
 * HAProxy), `/authz/ext-authz/*` (Envoy HTTP ext_authz). Any method; the body is ignored. A fault
 * answers 503 so the gateway fails closed.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError } from '../errors.js'
import type { Access } from '../gateway/access.js'
import { clientIpResolver } from '../gateway/client-ip.js'
import { gatewayDecision, type GatewayAnswer, type GatewayDeps } from '../gateway/decide.js'
import { fromAuthRequest, fromExtAuthz, fromForwardAuth, type OriginalRequest } from '../gateway/original.js'
import type { DecisionService } from '../service.js'
import type { Guard } from './auth.js'
import { send } from './errors.js'

export interface GatewayRouteOptions {
  service: DecisionService
  access: Access
  /** onRequest hooks: the X-Stepup-Key check (none when API_KEYS is unset). */
  guard: Guard[]
  trustedProxies: string[]
  deviceHeader: string
  deviceCookie?: string | undefined
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

const challengeBody = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, decisionId: { type: 'string' }, required: { type: 'object', additionalProperties: true }, enroll: { type: 'array', items: { type: 'string' } } }
}
/** What a gateway gets; the body never carries reasons or their figures. */
const ANSWERS = {
  200: { description: 'allow: no body; X-Stepup-Decision, X-Stepup-Decision-Id, X-Stepup-Subject and X-Stepup-Aal for the upstream.', type: 'null' },
  401: { description: 'step_up (RFC 9470 WWW-Authenticate), invalid_token, or no token where a policy needs a session (WWW-Authenticate: Bearer).', ...challengeBody },
  403: { description: 'deny (with WWW-Authenticate for unmet_authentication_requirements), or a caller outside its scope.', ...challengeBody },
  503: { description: 'The decision could not be made (issuer keys unavailable, overload): the gateway fails closed.', ...challengeBody }
}
const EXT_AUTHZ_PREFIX = '/authz/ext-authz'

/** The gateway endpoints, in a context of their own: it reads no request body. */
export const gatewayRoutes: FastifyPluginAsync<GatewayRouteOptions> = async (app, options) => {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => { payload.resume(); payload.on('end', () => done(null, undefined)); payload.on('error', () => done(null, undefined)) })
  routes(app, options)
}

function routes (app: FastifyInstance, { service, access, ...options }: GatewayRouteOptions): void {
  const deps: GatewayDeps = { service, access, clientIp: clientIpResolver(options.trustedProxies), deviceHeader: options.deviceHeader, deviceCookie: options.deviceCookie }
  const answer = async (request: FastifyRequest, reply: FastifyReply, original: () => OriginalRequest): Promise<FastifyReply> => {
    let result: GatewayAnswer
    try {
      result = await gatewayDecision(deps, request, original())
    } catch (err) {
      if (err instanceof ApiError) throw err
      request.log.error({ err }, 'gateway decision failed: answering 503 (fail closed)')
      return send(reply.header('retry-after', '1'), 'service_unavailable', 'the decision could not be made; retry')
    }
    reply.code(result.status).headers(result.headers)
    return result.body === undefined ? reply.send() : reply.type('application/json; charset=utf-8').send(result.body)
  }
  // Gateways forward the client's Content-Type with no body (or a body we never read): accept anything, parse nothing.
  // The OpenAPI document shows each endpoint once, as GET (what Traefik and Caddy send); the other methods answer alike.
  const route = (url: string, summary: string, operationId: string | undefined, original: (request: FastifyRequest) => OriginalRequest): void => {
    const handler = (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => answer(request, reply, () => original(request))
    const documented = operationId !== undefined
    app.route({
      method: 'GET',
      url,
      schema: documented ? { summary, operationId, tags: ['gateways'], security: [{ gatewayKey: [] }], response: ANSWERS } : { hide: true },
      onRequest: options.guard,
      handler
    })
    app.route({ method: METHODS.filter(m => m !== 'GET' && m !== 'HEAD'), url, schema: { hide: true }, onRequest: options.guard, handler })
  }
  route('/authz/auth-request', 'nginx auth_request: decides the request named by X-Original-Method and X-Original-URL', 'gatewayAuthRequest', r => fromAuthRequest(r.headers))
  route('/authz/forward-auth', 'Traefik forwardAuth, Caddy forward_auth, HAProxy: decides the request named by X-Forwarded-*', 'gatewayForwardAuth', r => fromForwardAuth(r.headers))
  route(EXT_AUTHZ_PREFIX, 'Envoy ext_authz (HTTP service): the original path follows the prefix (/authz/ext-authz/v1/payouts/42)', 'gatewayExtAuthz', r => fromExtAuthz(r.method, r.url, r.headers, EXT_AUTHZ_PREFIX))
  route(`${EXT_AUTHZ_PREFIX}/*`, 'Envoy ext_authz (HTTP service): the original path follows the prefix', undefined, r => fromExtAuthz(r.method, r.url, r.headers, EXT_AUTHZ_PREFIX))
}

/**
 * Gateway endpoints: `/authz/auth-request` (nginx), `/authz/forward-auth` (Traefik, Caddy,
 * HAProxy), `/authz/ext-authz/*` (Envoy HTTP ext_authz). Any method; the body is ignored. A fault
 * answers 503 so the gateway fails closed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError } from '../errors.js'
import type { Access } from '../gateway/access.js'
import { clientIpResolver } from '../gateway/client-ip.js'
import { gatewayDecision, type GatewayAnswer, type GatewayDeps } from '../gateway/decide.js'
import { fromAuthRequest, fromExtAuthz, fromForwardAuth, type OriginalRequest } from '../gateway/original.js'
import type { DecisionService } from '../service.js'
import { send } from './errors.js'

export interface GatewayRouteOptions {
  guard: unknown[]
  trustedProxies: string[]
  deviceHeader: string
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const EXT_AUTHZ_PREFIX = '/authz/ext-authz'

export function registerGatewayRoutes (root: FastifyInstance, service: DecisionService, access: Access, options: GatewayRouteOptions): void {
  void root.register(async (app) => {
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_request, payload, done) => { payload.resume(); payload.on('end', () => done(null, undefined)); payload.on('error', () => done(null, undefined)) })
    gatewayRoutes(app, service, access, options)
  })
}

function gatewayRoutes (app: FastifyInstance, service: DecisionService, access: Access, options: GatewayRouteOptions): void {
  const deps: GatewayDeps = { service, access, clientIp: clientIpResolver(options.trustedProxies), deviceHeader: options.deviceHeader }
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
  const scope = app
  const route = (url: string, summary: string, original: (request: FastifyRequest) => OriginalRequest): void => {
    scope.route({
      method: METHODS,
      url,
      schema: { summary, tags: ['gateways'], security: [{ gatewayKey: [] }] },
      onRequest: options.guard as never,
      handler: (request, reply) => answer(request, reply, () => original(request))
    })
  }
  route('/authz/auth-request', 'nginx auth_request: decides the request named by X-Original-Method and X-Original-URL', r => fromAuthRequest(r.headers))
  route('/authz/forward-auth', 'Traefik forwardAuth, Caddy forward_auth, HAProxy: decides the request named by X-Forwarded-*', r => fromForwardAuth(r.headers))
  route(EXT_AUTHZ_PREFIX, 'Envoy ext_authz (HTTP service): the original path follows the prefix', r => fromExtAuthz(r.method, r.url, r.headers, EXT_AUTHZ_PREFIX))
  route(`${EXT_AUTHZ_PREFIX}/*`, 'Envoy ext_authz (HTTP service): the original path follows the prefix', r => fromExtAuthz(r.method, r.url, r.headers, EXT_AUTHZ_PREFIX))
}

/**
 * buildApp(config, deps): the same app for tests and production. It wires; it does not
 * listen, read the environment or exit (src/server.ts does).
 */
import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { ErrorCodes, type ErrorCode } from './errors.js'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance, type FastifyRequest } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { Cluster, Redis } from 'ioredis'
import { pino, type Logger } from 'pino'
import { isLoopback, type Config } from './config.js'
import { callerIdentifier, keyChecker, requireCaller, requireKey } from './http/auth.js'
import { TokenVerifier } from './tokens/verify.js'
import { currentGateway, scopeOf, type Access } from './gateway/access.js'
import { gatewayRoutes } from './http/gateway-routes.js'
import { authzenRoutes } from './http/authzen-routes.js'
import { decideRoute } from './http/decide-route.js'
import { registerErrorHandling } from './http/errors.js'
import { healthRoutes } from './http/health-routes.js'
import { adminRoutes } from './http/admin-routes.js'
import { eventsRoute } from './http/events-route.js'
import { registerRateLimits } from './http/rate-limit.js'
import underPressure from '@fastify/under-pressure'
import { createMemoryAuditLog, recordRequest, type AuditLog, type DecisionAuditRecord } from './audit/audit-log.js'
import { createCompletionTracker, type CompletionTracker } from './audit/completion.js'
import { createMetrics, type Metrics } from './metrics.js'
import type { PolicyReloader } from './policy/reloader.js'
import { playgroundAccess, playgroundRoutes } from './playground/routes.js'
import { errorBodySchema, send } from './http/errors.js'
import { documentOpenApi } from './http/openapi-docs.js'
import { addIpFormat } from './contract/validation.js'
import type { PolicyHolder } from './policy/load.js'
import { createDecisionService, type DecisionRecord, type DecisionServiceDeps } from './service.js'
import type { GeoLookup } from './signals/geo.js'
import type { HistoryStore } from './signals/history.js'

export const BODY_LIMIT = 64 * 1024

export interface AppDeps {
  policies: PolicyHolder
  /** A getter: the geo database may still be loading when the app starts. */
  geo: GeoLookup | (() => GeoLookup)
  history: HistoryStore
  logger?: Logger
  now?: () => number
  onDecision?: DecisionServiceDeps['onDecision']
  audit?: AuditLog
  metrics?: Metrics
  reloader?: PolicyReloader
  /** Verifies users' tokens; default one with the app's clock. */
  verifier?: TokenVerifier
  /** Event-loop delay (ms) past which requests get 503; 0 disables the check. */
  maxEventLoopDelayMs?: number
  /** Default DEFAULT_HTTP_TIMEOUTS; tests shorten them. */
  httpTimeouts?: Partial<HttpTimeouts>
  /** Where rate-limit counters live when Redis is configured (else in memory). */
  rateLimitRedis?: Redis | Cluster
}

/**
 * How long a client may take. Without these, a client sending its body one byte at a time
 * holds a connection (and its memory) forever: Node's own 5-minute request limit is turned off
 * by Fastify's default.
 */
export interface HttpTimeouts {
  /** The whole request, headers and body (a /decide body is at most 64 KiB): 408 after it. */
  requestTimeoutMs: number
  /** The headers alone; also a connection that sends nothing. */
  headersTimeoutMs: number
  /** A socket with no traffic at all, as a last resort. Above keepAliveTimeoutMs. */
  connectionTimeoutMs: number
  /** An idle keep-alive connection; above the 60 s idle timeout of common load balancers. */
  keepAliveTimeoutMs: number
}

export const DEFAULT_HTTP_TIMEOUTS: Readonly<HttpTimeouts> = Object.freeze({
  requestTimeoutMs: 10_000,
  headersTimeoutMs: 5_000,
  connectionTimeoutMs: 120_000,
  keepAliveTimeoutMs: 72_000
})

/** `host` (default loopback) and `policiesDir` serve the playground; without them it still works. */
/** Rate limits are off unless given (src/server.ts passes the configured ones). */
export type AppConfig = Pick<Config, 'apiKeys' | 'adminApiKeys'> & Partial<Pick<Config, 'host' | 'policiesDir' | 'trustedProxies' | 'deviceHeader' | 'deviceCookie' | 'secrets' | 'rateLimitPerMinute' | 'rateLimitSubjectEventsPerMinute'>>

export const VERSION = '0.1.0'

export function auditDecision (audit: AuditLog, { decisionId, request, decision, at, facts, policyRevision, redactContext }: DecisionRecord, completions?: CompletionTracker): void {
  // Everything a replay needs (stepup replay): the normalized request, the facts, the revision.
  const record: DecisionAuditRecord = {
    at, event: decision.event, decisionId, subject: request.subjectId, action: request.action, decision: decision.decision, policies: decision.policies,
    revision: policyRevision, now: at / 1000, request: recordRequest(request, redactContext), facts
  }
  if (request.tenant !== undefined) record.tenant = request.tenant
  if (decision.decision === 'step_up' && decision.required) record.required = { aal: decision.required.aal, maxAge: decision.required.maxAge, factors: decision.required.factors }
  const exemption = decision.reasons.find(r => r.exemption !== undefined)?.exemption
  if (exemption !== undefined) record.exemption = exemption
  audit.append(record)
  completions?.observe(record)
  if (decision.decision === 'step_up') {
    audit.rememberStepUp(decisionId, request.tenant !== undefined
      ? { tenant: request.tenant, subject: request.subjectId, action: request.action }
      : { subject: request.subjectId, action: request.action })
  }
}

/** The Fastify options of the service (also the benchmark's bare baseline, so both parse and validate alike). */
export function fastifyOptions (logger: Logger, timeouts: Partial<HttpTimeouts> = {}): FastifyHttpOptions<Server> {
  const t = { ...DEFAULT_HTTP_TIMEOUTS, ...timeouts }
  return {
    requestTimeout: t.requestTimeoutMs,
    connectionTimeout: t.connectionTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    // Node checks the request and header deadlines on this interval (30 s by default).
    http: { headersTimeout: t.headersTimeoutMs, requestTimeout: t.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, Math.ceil(t.headersTimeoutMs / 4)) },
    // On close, idle keep-alive connections are closed at once; busy ones after their response.
    forceCloseConnections: 'idle',
    loggerInstance: logger as FastifyBaseLogger,
    // One structured line per decision is the audit log; per-request access lines would double it.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    clientErrorHandler: answerClientError,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
      plugins: [addIpFormat]
    }
  }
}

/**
 * Errors the HTTP parser raises before a route runs (a request past its deadline, malformed
 * HTTP): answered in the same `{ error, message }` form as every other 4xx, then closed.
 */
function answerClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) { socket.destroy(); return }
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
  const large = err.code === 'HPE_HEADER_OVERFLOW'
  const [code, text, message]: [ErrorCode, string, string] = timeout
    ? ['request_timeout', 'Request Timeout', 'request: not received within the time limit']
    : large
      ? ['headers_too_large', 'Request Header Fields Too Large', 'headers: larger than the server accepts']
      : ['invalid_request', 'Bad Request', 'request: not valid HTTP']
  const body = JSON.stringify({ error: code, message })
  socket.end(`HTTP/1.1 ${ErrorCodes[code].status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

export async function buildApp (config: AppConfig, deps: AppDeps): Promise<FastifyInstance> {
  const logger = deps.logger ?? pino({ level: 'silent' })
  const app: FastifyInstance = Fastify(fastifyOptions(logger, deps.httpTimeouts))
  // JSON only: a body sent as text/plain is refused with 415, not parsed as a string.
  app.removeContentTypeParser(['text/plain'])
  app.addSchema(errorBodySchema)
  registerErrorHandling(app, { onRejected: (code, status) => { metrics.rejected?.(code, status) } })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'stepup-pdp',
        version: VERSION,
        description: 'A policy decision point for step-up authentication. Ask before a sensitive action whether the session is strong and fresh enough; forward the RFC 9470 challenge when it is not.'
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'A key from API_KEYS (required when API_KEYS is set).' },
          adminKey: { type: 'http', scheme: 'bearer', description: 'A key from ADMIN_API_KEYS (admin routes exist only when it is set).' },
          gatewayKey: { type: 'apiKey', in: 'header', name: 'X-Stepup-Key', description: 'A key from API_KEYS, for gateway endpoints (Authorization holds the user\'s token).' }
        }
      },
      security: [{ apiKey: [] }]
    },
    transformObject: document => 'openapiObject' in document ? documentOpenApi(document.openapiObject) : document.swaggerObject,
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  if ((deps.maxEventLoopDelayMs ?? 1000) > 0) {
    // Shed load instead of queueing: a decision that arrives late is worth less than a fast 503.
    await app.register(underPressure, {
      maxEventLoopDelay: deps.maxEventLoopDelayMs ?? 1000,
      retryAfter: 1,
      pressureHandler: (_request, reply) => { void send(reply.header('retry-after', '1'), 'service_unavailable', 'service: overloaded; retry shortly') }
    })
  }

  const limitSubject = await registerRateLimits(app, {
    perMinute: config.rateLimitPerMinute ?? 0,
    subjectEventsPerMinute: config.rateLimitSubjectEventsPerMinute ?? 0,
    keyed: config.apiKeys.length > 0,
    redis: deps.rateLimitRedis
  })

  const now = deps.now ?? Date.now
  const metrics = deps.metrics ?? createMetrics()
  metrics.policiesLoaded(deps.policies.current.policies.length)
  const audit = deps.audit ?? createMemoryAuditLog({ maxEntries: 10_000 })
  const completions = createCompletionTracker(audit)
  const geo = typeof deps.geo === 'function' ? deps.geo : ((g: GeoLookup) => () => g)(deps.geo)
  metrics.watchGeo?.(() => geo().describe())
  const service = createDecisionService({
    policies: deps.policies,
    geo: { lookup: ip => geo().lookup(ip), get ready () { return geo().ready }, describe: () => geo().describe(), close: () => geo().close() },
    history: deps.history,
    logger,
    now,
    onStoreError: metrics.storeError,
    onDecision: record => {
      metrics.recordDecision(record)
      auditDecision(audit, record, completions)
      deps.onDecision?.(record)
    }
  })

  const identify = config.apiKeys.length > 0 ? callerIdentifier(config.apiKeys) : undefined
  const apiGuard = identify ? [requireCaller(identify, 'authorization')] : []
  const access: Access = { verifier: deps.verifier ?? new TokenVerifier({ now, secrets: config.secrets }), policies: deps.policies, keyed: identify !== undefined, now }
  // Each group of routes is a plugin, loaded when the app gets ready (after the hooks below), in
  // this order: the order of the OpenAPI document.
  void app.register(decideRoute, { service, access, guard: apiGuard })
  void app.register(authzenRoutes, { service, access, guard: apiGuard })
  const tenantsOf = (request: FastifyRequest): string[] | undefined => scopeOf(request, currentGateway(access).gateway)?.tenants
  void app.register(eventsRoute, { audit, now, guard: apiGuard, tenantsOf, limitSubject, onFailed: service.recordStepUpFailure })
  void app.register(healthRoutes, { policies: deps.policies, geo, history: deps.history })
  void app.register(async scope => {
    scope.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['operations'], security: [] } }, async (_request, reply) => {
      reply.type(metrics.registry.contentType)
      return metrics.registry.metrics()
    })
  })
  if (config.adminApiKeys.length > 0) {
    void app.register(adminRoutes, { policies: deps.policies, reloader: deps.reloader, audit, tenantsOf, guard: [requireCaller(callerIdentifier(config.adminApiKeys), 'authorization', 'stepup-pdp-admin')] })
  }
  void app.register(playgroundRoutes, {
    access: playgroundAccess({ loopback: isLoopback(config.host ?? '127.0.0.1'), apiKeys: config.apiKeys, adminApiKeys: config.adminApiKeys }),
    guard: config.adminApiKeys.length > 0 ? [requireKey(keyChecker(config.adminApiKeys), 'stepup-pdp-admin')] : [],
    policies: deps.policies,
    geo,
    history: deps.history,
    now,
    policiesDir: config.policiesDir
  })
  void app.register(gatewayRoutes, {
    service,
    access,
    guard: identify ? [requireCaller(identify, 'x-stepup-key')] : [],
    trustedProxies: config.trustedProxies ?? ['127.0.0.0/8', '::1/128'],
    deviceHeader: config.deviceHeader ?? 'x-device-fingerprint',
    deviceCookie: config.deviceCookie
  })
  // Shutting down: every response still being sent says `Connection: close`, so a keep-alive
  // client knows the connection ends (a clean FIN after the response, no reset) and the close
  // does not wait for its idle timeout.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close')
    return payload
  })
  app.addHook('onClose', async () => { await audit.flush() })
  return app
}

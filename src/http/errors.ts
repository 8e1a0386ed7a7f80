/**
 * The one place that maps errors to HTTP responses. Every 4xx body is
 * `{ error, message }` naming the field; a 5xx never echoes internals.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, ErrorCodes, StoreUnavailableError, type ErrorCode } from '../errors.js'
import { describeIssue, type ValidationIssue } from '../contract/validation.js'

/** The catalogue as a Markdown table (code, status, meaning), for the Error schema's description. */
const catalogueTable = (): string =>
  'Every refused request has this body. `error` is a stable code to match on; `message` says what is wrong and names the field.\n\n'
  + '| code | status | meaning |\n|---|---|---|\n'
  + Object.entries(ErrorCodes).map(([code, c]) => `| \`${code}\` | ${c.status} | ${c.summary} |`).join('\n')

/**
 * The body of every refused request, registered as the shared `Error` schema that route
 * schemas reference; the OpenAPI document publishes it too. Its codes and their meaning come
 * from the catalogue, so the two cannot drift apart.
 */
export const errorBodySchema = {
  $id: 'Error',
  type: 'object',
  required: ['error', 'message'],
  description: catalogueTable(),
  properties: {
    error: { type: 'string', enum: Object.keys(ErrorCodes), description: 'A stable code from the table above.' },
    message: { type: 'string', description: 'What is wrong, naming the field.' }
  }
}

/** The code of each refused request, as `send` set it, for the one log line and metric per 4xx. */
const rejectedWith = new WeakMap<FastifyReply, string>()

/** Answers with the catalogue's status for `code`; `more` adds fields after `error` and `message`. */
export function send (reply: FastifyReply, code: ErrorCode, message: string, more?: Record<string, unknown>): FastifyReply {
  rejectedWith.set(reply, code)
  return reply.code(ErrorCodes[code].status).type('application/json; charset=utf-8').send({ error: code, message, ...more })
}

const FASTIFY_CODES: Record<string, { code: ErrorCode, message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large', message: 'body: larger than 65536 bytes' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', message: 'content-type: the body must be application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'invalid_request', message: 'content-length: does not match the body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'invalid_request', message: 'body: empty; send a JSON object' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_request', message: 'body: not valid JSON' }
}

export interface ErrorHandlingOptions {
  /** Called once per request refused with a 4xx (metrics). */
  onRejected?: (code: string, status: number) => void
}

/**
 * The code of a 4xx a route sent itself: the `error` of its JSON body. A body with a
 * `decisionId` is a decision (a gateway's 401 step-up or 403 deny), not a refused request.
 */
function codeOfBody (payload: unknown): string | undefined {
  if (typeof payload !== 'string' || payload.length > 65_536 || payload[0] !== '{') return undefined
  try {
    const body = JSON.parse(payload) as Record<string, unknown>
    if (body.decisionId !== undefined) return undefined
    return typeof body.error === 'string' ? body.error : undefined
  } catch {
    return undefined
  }
}

export function registerErrorHandling (app: FastifyInstance, options: ErrorHandlingOptions = {}): void {
  // Every refused request leaves one info line with its code, and is counted by code.
  // A callback hook, not an async one: it runs on every response, the decisions' included.
  app.addHook('onSend', (request, reply, payload, done) => {
    const status = reply.statusCode
    if (status >= 400 && status < 500) {
      const code = rejectedWith.get(reply) ?? codeOfBody(payload)
      if (code !== undefined) {
        // The path only: a query string may name a subject.
        request.log.info({ reqId: request.id, method: request.method, path: request.url.split('?')[0]!.slice(0, 200), status, code }, 'request rejected')
        options.onRejected?.(code, status)
      }
    }
    done(null, payload)
  })

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof ApiError) return send(reply, error.code, error.message)
    if (error instanceof StoreUnavailableError) {
      request.log.warn({ err: error.message }, 'store unavailable')
      return send(reply.header('retry-after', String(error.retryAfterSeconds)), 'service_unavailable', `${error.message.split(':')[0]!}: unavailable; retry shortly`)
    }
    if (error.validation) {
      const issue = error.validation[0] as unknown as ValidationIssue
      const where = error.validationContext === 'body' ? '' : `${error.validationContext ?? ''} `
      return send(reply, 'invalid_request', `${where}${describeIssue(issue)}`)
    }
    const known = error.code ? FASTIFY_CODES[error.code] : undefined
    if (known) return send(reply, known.code, known.message)
    if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON|prototype/i.test(error.message))) {
      return send(reply, 'invalid_request', `body: not valid JSON (${error.message.split('\n')[0]!.slice(0, 100)})`)
    }
    if (error.statusCode === 503) return send(reply, 'service_unavailable', 'the service is overloaded or shutting down; retry')
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return send(reply, 'invalid_request', `request: ${error.message.slice(0, 200)}`)
    }
    request.log.error({ err: error }, 'unhandled error')
    return send(reply, 'internal_error', 'an internal error occurred; see the service log')
  })
  app.setNotFoundHandler((request, reply) => send(reply, 'not_found', `route: no ${request.method} ${request.url.split('?')[0]}`))
}

/**
 * The one place that maps errors to HTTP responses. Every 4xx body is
 * `{ error, message }` naming the field; a 5xx never echoes internals.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, ErrorCodes, StoreUnavailableError, type ErrorCode } from '../errors.js'
import { describeIssue, type ValidationIssue } from '../contract/validation.js'

export function send (reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(ErrorCodes[code].status).type('application/json; charset=utf-8').send({ error: code, message })
}

const FASTIFY_CODES: Record<string, { code: ErrorCode, message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large', message: 'body: larger than 65536 bytes' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', message: 'content-type: the body must be application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'invalid_request', message: 'content-length: does not match the body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'invalid_request', message: 'body: empty; send a JSON object' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_request', message: 'body: not valid JSON' }
}

export function registerErrorHandling (app: FastifyInstance): void {
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

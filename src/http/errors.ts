/**
 * The one place that maps errors to HTTP responses. Every 4xx body is
 * `{ error, message }` naming the field; a 5xx never echoes internals.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, ErrorCodes, type ErrorCode } from '../errors.js'

interface ValidationIssue {
  instancePath: string
  keyword: string
  params: Record<string, unknown>
  message?: string
}

const fieldOf = (issue: ValidationIssue): string => {
  const path = issue.instancePath.slice(1).split('/').filter(Boolean)
    .map(s => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`)).join('').replace(/^\./, '')
  const join = (name: string): string => (path === '' ? name : `${path}.${name}`)
  if (issue.keyword === 'required') return join(String(issue.params.missingProperty))
  if (issue.keyword === 'additionalProperties') return join(String(issue.params.additionalProperty))
  return path === '' ? 'body' : path
}

const problemOf = (issue: ValidationIssue): string => {
  switch (issue.keyword) {
    case 'required': return 'is required'
    case 'additionalProperties': return 'unknown field'
    case 'format': return issue.params.format === 'ip' ? 'must be an IPv4 or IPv6 address' : `must be a valid ${String(issue.params.format)}`
    case 'pattern': return issue.instancePath === '/action'
      ? 'must be 1-200 characters of A-Z a-z 0-9 . : / - with non-empty segments between dots'
      : String(issue.params.pattern).includes('u0000') ? 'must not contain control characters' : `must match ${String(issue.params.pattern)}`
    case 'maxProperties': return `must have at most ${String(issue.params.limit)} keys`
    case 'type': return `must be ${issue.params.type === 'object' ? 'an object' : issue.params.type === 'array' ? 'an array' : `a ${String(issue.params.type)}`}`
    default: return issue.message ?? issue.keyword
  }
}

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
    if (error.validation) {
      const issue = error.validation[0] as unknown as ValidationIssue
      const where = error.validationContext === 'body' ? '' : `${error.validationContext ?? ''} `
      return send(reply, 'invalid_request', `${where}${fieldOf(issue)}: ${problemOf(issue)}`)
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

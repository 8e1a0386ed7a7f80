/**
 * The one validator of the decision request, and what a violation means in words that name
 * the field. The HTTP route validates with this very function (its `validatorCompiler`),
 * `stepup decide`, `stepup test` and the benchmark call it: a body one accepts, all accept.
 */
import { isIP } from 'node:net'
import { Ajv } from 'ajv'
import { badRequest } from '../errors.js'
import { decideRequestSchema, transactionSchema, type DecideBody } from './schemas.js'

export interface ValidationIssue {
  instancePath: string
  keyword: string
  params: Record<string, unknown>
  message?: string
}

/** IPv4 or IPv6, without an interface zone (`fe80::1%eth0` names a link, not a client). */
export const isClientIp = (s: string): boolean => isIP(s) !== 0 && !s.includes('%')

export const addIpFormat = (ajv: Ajv): Ajv => ajv.addFormat('ip', isClientIp)

export function fieldOf (issue: ValidationIssue): string {
  const path = issue.instancePath.slice(1).split('/').filter(Boolean)
    .map(s => (/^\d+$/.test(s) ? `[${s}]` : `.${s.replace(/~1/g, '/').replace(/~0/g, '~')}`)).join('').replace(/^\./, '')
  const join = (name: string): string => (path === '' ? name : `${path}.${name}`)
  if (issue.keyword === 'required') return join(String(issue.params.missingProperty))
  if (issue.keyword === 'additionalProperties') return join(String(issue.params.additionalProperty))
  return path === '' ? 'body' : path
}

export function problemOf (issue: ValidationIssue): string {
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

/** `field: problem`, as every 400 says it. */
export const describeIssue = (issue: ValidationIssue): string => `${fieldOf(issue)}: ${problemOf(issue)}`

/** Ajv options of every schema the service validates with (also Fastify's, for the other routes). */
export const AJV_OPTIONS = { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } as const

const ajv = addIpFormat(new Ajv({ ...AJV_OPTIONS, strict: false }))

/** The compiled request schema: an Ajv function (`errors` set when it returns false), as Fastify expects. */
export const decideBodyValidator = ajv.compile<DecideBody>(decideRequestSchema)

const transactionValidator = ajv.compile<NonNullable<NonNullable<DecideBody['context']>['transaction']>>(transactionSchema)

/**
 * `context.transaction` where the request schema did not check it (AuthZEN's free-form context,
 * a gateway's): the same rules and messages as POST /decide.
 */
export function validateTransaction (value: unknown): NonNullable<NonNullable<DecideBody['context']>['transaction']> {
  if (transactionValidator(value)) return value
  const issue = transactionValidator.errors![0]! as unknown as ValidationIssue
  const field = fieldOf({ ...issue, instancePath: `/context/transaction${issue.instancePath}` })
  throw badRequest(field, problemOf({ ...issue, instancePath: `/context/transaction${issue.instancePath}` }))
}

/** Validates a body against the request schema; throws the `invalid_request` error the route answers. */
export function validateDecideBody (body: unknown): DecideBody {
  if (decideBodyValidator(body)) return body
  const issue = decideBodyValidator.errors![0]! as unknown as ValidationIssue
  throw badRequest(fieldOf(issue), problemOf(issue))
}

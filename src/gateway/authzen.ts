/**
 * The OpenID AuthZEN Authorization API 1.0 mapped onto a decision: `subject.id` is the user
 * (`subject.properties.token` or `.claims` the session, `.tenant`, `.application`,
 * `.enrolledFactors`), `action.name` the action, `resource.type` the resource (with `id` and
 * `properties` in `context.resource`), `context.ip` and `context.device` the client. A step-up is
 * `decision: false` with `context.step_up` holding what would satisfy it and the RFC 9470
 * challenge; a deny carries `reason_admin` / `reason_user` (language-tagged, as the API's
 * examples show). No reason figures ever leave through this API.
 */
import type { Decision } from '../engine/decide.js'
import { badRequest } from '../errors.js'
import type { DecideBody } from '../contract/index.js'

export interface AuthzenEntity { type?: string, id?: string, name?: string, properties?: Record<string, unknown> }

export interface AuthzenRequest {
  subject: AuthzenEntity
  action: AuthzenEntity
  resource: AuthzenEntity
  context?: Record<string, unknown>
}

export type EvaluationsSemantic = 'execute_all' | 'deny_on_first_deny' | 'permit_on_first_permit'

export interface AuthzenEvaluations {
  subject?: AuthzenEntity
  action?: AuthzenEntity
  resource?: AuthzenEntity
  context?: Record<string, unknown>
  evaluations?: Array<Partial<AuthzenRequest>>
  options?: { evaluations_semantic?: EvaluationsSemantic } & Record<string, unknown>
}

export interface AuthzenAnswer { decision: boolean, context?: Record<string, unknown> }

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

/** The decide body and the token an AuthZEN request stands for (`at` prefixes field names). */
export function toDecideBody (request: AuthzenRequest, at = ''): { body: DecideBody, token: string | undefined } {
  const { subject, action, resource } = request
  const props = subject.properties ?? {}
  const token = props.token
  const claims = props.claims
  if (token !== undefined && typeof token !== 'string') throw badRequest(`${at}subject.properties.token`, 'must be a string')
  if (claims !== undefined && (claims === null || typeof claims !== 'object' || Array.isArray(claims))) throw badRequest(`${at}subject.properties.claims`, 'must be an object')
  const context: Record<string, unknown> = { ...request.context }
  const ip = context.ip
  const device = context.device
  delete context.ip
  delete context.device
  if (ip !== undefined && typeof ip !== 'string') throw badRequest(`${at}context.ip`, 'must be a string')
  const fingerprint = typeof device === 'string' ? device : str((device as { fingerprint?: unknown } | undefined)?.fingerprint)
  if (device !== undefined && fingerprint === undefined) throw badRequest(`${at}context.device`, 'must be a fingerprint string or { fingerprint }')
  context.resource = { type: resource.type, id: resource.id, ...(resource.properties ? { properties: resource.properties } : {}) }
  const body: DecideBody = {
    action: action.name!,
    subject: { id: subject.id!, ...(Array.isArray(props.enrolledFactors) ? { enrolledFactors: props.enrolledFactors as string[] } : {}) },
    resource: resource.type,
    context
  }
  if (claims !== undefined) body.claims = claims as Record<string, unknown>
  const tenant = str(props.tenant)
  const application = str(props.application)
  if (tenant !== undefined) body.tenant = tenant
  if (application !== undefined) body.application = application
  if (ip !== undefined) body.ip = ip
  if (fingerprint !== undefined) body.device = { fingerprint }
  return { body, token: token as string | undefined }
}

export function toAuthzenAnswer (decisionId: string, decision: Decision): AuthzenAnswer {
  if (decision.decision === 'allow') return { decision: true, context: { decision_id: decisionId } }
  const context: Record<string, unknown> = { decision_id: decisionId }
  if (decision.message !== undefined) context.reason_user = { en: decision.message }
  if (decision.decision === 'step_up') {
    context.step_up = { required: decision.required, challenge: decision.challenge }
    return { decision: false, context }
  }
  context.reason_admin = { en: decision.policies.length > 0 ? `denied by ${decision.policies.join(', ')}` : decision.reasons.map(r => r.detail ?? r.trigger).join('; ') }
  if (decision.challenge?.wwwAuthenticate !== undefined || (decision.challenge?.status as number) === 503) context.challenge = decision.challenge
  if (decision.enroll !== undefined) context.enroll = decision.enroll
  if (decision.required !== undefined) context.required = decision.required
  return { decision: false, context }
}

/** Fills an item from the request's defaults: each of subject, action, resource, context replaces the default whole. */
export function withDefaults (defaults: AuthzenEvaluations, item: Partial<AuthzenRequest>, index: number): AuthzenRequest {
  const subject = item.subject ?? defaults.subject
  const action = item.action ?? defaults.action
  const resource = item.resource ?? defaults.resource
  const context = item.context ?? defaults.context
  const at = `evaluations[${index}]`
  if (!subject) throw badRequest(`${at}.subject`, 'required (here or at the top level)')
  if (!action) throw badRequest(`${at}.action`, 'required (here or at the top level)')
  if (!resource) throw badRequest(`${at}.resource`, 'required (here or at the top level)')
  return { subject, action, resource, ...(context ? { context } : {}) }
}

/**
 * `POST /events`: the caller reports how a step-up ended. Only step-ups this service issued
 * (in the last 24 hours) are accepted, each once.
 */
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { AuditLog } from '../audit/audit-log.js'
import { ApiError } from '../errors.js'
import type { SubjectLimiter } from './rate-limit.js'
import type { SubjectKey } from '../signals/history.js'
import type { Guard } from './auth.js'

const eventBodySchema = Type.Object({
  decisionId: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$', description: 'The decisionId of a step_up answer.' }),
  event: Type.Unsafe<'auth.step_up_completed' | 'auth.step_up_failed'>({ type: 'string', enum: ['auth.step_up_completed', 'auth.step_up_failed'] }),
  detail: Type.Optional(Type.String({ maxLength: 500 }))
}, { additionalProperties: false })
type EventBody = Static<typeof eventBodySchema>

export interface EventsRouteOptions {
  audit: AuditLog
  now: () => number
  /** onRequest hooks: the API key check (none when API_KEYS is unset). */
  guard: Guard[]
  tenantsOf?: (request: FastifyRequest) => string[] | undefined
  limitSubject?: SubjectLimiter
  /** A failed step-up, counted for the lockouts of payment policies (docs/psd2.md). */
  onFailed?: (subject: SubjectKey) => Promise<void>
}

export const eventsRoute: FastifyPluginAsync<EventsRouteOptions> = async (app, deps) => {
  app.post<{ Body: EventBody }>('/events', {
    onRequest: deps.guard,
    schema: {
      summary: 'Record how a step-up ended',
      tags: ['decisions'],
      body: eventBodySchema,
      response: {
        200: { type: 'object', properties: { recorded: { type: 'boolean' }, decisionId: { type: 'string' }, event: { type: 'string' } } },
        403: { $ref: 'Error#' },
        404: { $ref: 'Error#' },
        409: { $ref: 'Error#' },
        429: { $ref: 'Error#' }
      }
    }
  }, async (request, reply) => {
    const { decisionId, event, detail } = request.body
    const ref = await deps.audit.findStepUp(decisionId)
    if (!ref) throw new ApiError('not_found', 'decisionId: no step-up decision with this id was issued in the last 24 hours')
    const tenants = deps.tenantsOf?.(request)
    if (tenants !== undefined && (ref.tenant === undefined || !tenants.includes(ref.tenant))) throw new ApiError('caller_scope', 'decisionId: the step-up belongs to a tenant outside this caller\'s scope')
    // Per subject, before anything is recorded: a flood of outcomes for one user is refused.
    await deps.limitSubject?.(request, reply, `${ref.tenant ?? ''}\u0000${ref.subject}`)
    if (!(await deps.audit.claimOutcome(decisionId))) throw new ApiError('conflict', 'decisionId: the outcome of this step-up was already recorded')
    deps.audit.append({
      at: deps.now(),
      event,
      decisionId,
      ...(ref.tenant !== undefined ? { tenant: ref.tenant } : {}),
      subject: ref.subject,
      action: ref.action,
      ...(detail !== undefined ? { detail } : {})
    })
    request.log.info({ decisionId, event, subject: ref.subject, action: ref.action }, 'step-up outcome')
    if (event === 'auth.step_up_failed' && deps.onFailed) {
      // After the outcome is claimed: a replayed event never counts twice towards a lockout.
      try {
        await deps.onFailed({ tenant: ref.tenant, subject: ref.subject })
      } catch (err) {
        request.log.warn({ decisionId, err: String((err as Error)?.message ?? err).split('\n')[0] }, 'failed step-up not counted for the lockout: history store error')
      }
    }
    return { recorded: true, decisionId, event }
  })
}

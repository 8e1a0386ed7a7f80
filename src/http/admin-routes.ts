/** Admin routes (ADMIN_API_KEYS): the policy set, reloads, and the audit trail. */
import { Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { AuditLog } from '../audit/audit-log.js'
import { formatProblem } from '../errors.js'
import { ACTION_MAX_LENGTH } from '../engine/actions.js'
import { send } from './errors.js'
import type { PolicyHolder } from '../policy/load.js'
import type { PolicyReloader } from '../policy/reloader.js'
import { ApiError, badRequest } from '../errors.js'
import type { Guard } from './auth.js'

const AUDIT_EVENTS = ['auth.step_up_initiated', 'auth.step_up_skipped', 'auth.access_denied', 'auth.allowed', 'auth.step_up_completed', 'auth.step_up_failed', 'policy.reloaded', 'policy.rejected']

/** ISO 8601 date or date-time (what `Date.parse` reads reliably); anything else is refused. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/
/** The latest time a JavaScript Date holds; stream ids beyond it would be refused by Redis. */
const MAX_TIME_MS = 8.64e15

const parseTime = (field: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const t = /^\d{1,16}$/.test(value) ? Number(value) : ISO_8601.test(value) ? Date.parse(value) : Number.NaN
  if (!Number.isFinite(t)) throw badRequest(field, 'must be an ISO 8601 time (2026-11-22T12:00:00Z) or epoch milliseconds')
  if (t < 0 || t > MAX_TIME_MS) throw badRequest(field, 'out of range: from 1970-01-01 to 275760-09-13')
  return t
}

export interface AdminRouteOptions {
  policies: PolicyHolder
  reloader: PolicyReloader | undefined
  audit: AuditLog
  /** The tenants the caller is limited to (its callers: entry), if any. */
  tenantsOf?: (request: FastifyRequest) => string[] | undefined
  /** onRequest hooks: the admin key check. */
  guard: Guard[]
}

export const adminRoutes: FastifyPluginAsync<AdminRouteOptions> = async (app, deps) => {
  const { guard } = deps

  app.get('/policies', { onRequest: guard, schema: { summary: 'The policy set that serves, and the last refused reload', tags: ['admin'], security: [{ adminKey: [] }] } }, async () => {
    const set = deps.policies.current
    const lastError = deps.policies.lastError
    return {
      hash: set.hash,
      revision: set.revision,
      loadedAt: deps.policies.loadedAt.toISOString(),
      count: set.policies.length,
      lastError: lastError ? lastError.problems.map(formatProblem) : null,
      policies: set.policies.map(p => ({
        id: p.id, file: p.file, line: p.line, scope: p.scope, actions: p.actions, effect: p.effect, mode: p.mode,
        ...(p.overrides !== undefined ? { overrides: p.overrides } : {}),
        triggers: p.triggers.map(t => t.kind),
        ...(p.effect === 'step_up' ? { require: p.require } : {})
      }))
    }
  })

  app.post<{ Querystring: { allowRemovals?: 'true' | 'false' } }>('/policies/reload', {
    onRequest: guard,
    schema: {
      summary: 'Reload the policy folder now',
      description: 'A reload that removes policies, or empties a file that held some, is refused unless allowRemovals=true (SIGHUP and a .allow-removals file in the folder confirm too).',
      tags: ['admin'],
      security: [{ adminKey: [] }],
      querystring: { type: 'object', additionalProperties: false, properties: { allowRemovals: { type: 'string', enum: ['true', 'false'] } } }
    }
  }, async (request, reply) => {
    if (!deps.reloader) throw badRequest('reload', 'this instance was started without a policy folder to reload')
    const allowRemovals = request.query.allowRemovals === 'true'
    const result = await deps.reloader.reload(allowRemovals ? 'POST /policies/reload?allowRemovals=true' : 'POST /policies/reload', { allowRemovals })
    if (!result.ok) {
      const message = result.outcome === 'removal_refused'
        ? `the new set removes policies (${result.removed.join(', ') || 'a file emptied'}); confirm with allowRemovals=true. The previous set keeps serving`
        : 'the new set does not validate; the previous set keeps serving'
      return send(reply, 'policies_invalid', message, { problems: result.errors, details: result.details.filter(p => p.severity === 'error'), removed: result.removed })
    }
    return result
  })

  app.get<{ Querystring: { since?: string } }>('/audit/export', {
    onRequest: guard,
    schema: {
      summary: 'Every stored audit record, oldest first, as JSON lines (for stepup replay)',
      tags: ['admin'],
      security: [{ adminKey: [] }],
      querystring: { type: 'object', additionalProperties: false, properties: { since: { type: 'string', maxLength: 40 } } }
    }
  }, async (request, reply) => {
    const since = parseTime('since', request.query.since)
    const exporter = deps.audit.export
    if (exporter === undefined) throw new ApiError('not_found', 'audit: this audit store cannot export')
    const records = exporter.call(deps.audit, since !== undefined ? { since } : {})[Symbol.asyncIterator]()
    // The first page is read before answering, so a store that is down gets a 503, not a cut stream.
    let first: IteratorResult<unknown>
    try {
      first = await records.next()
    } catch {
      return send(reply.header('retry-after', '5'), 'service_unavailable', 'audit: the audit store is unavailable; retry shortly')
    }
    // A caller scoped to tenants exports only their decision records (no reload events either).
    const tenants = deps.tenantsOf?.(request)
    const visible = (record: unknown): boolean => tenants === undefined
      || (typeof (record as { tenant?: unknown }).tenant === 'string' && tenants.includes((record as { tenant: string }).tenant))
    const lines = async function* (): AsyncGenerator<string> {
      for (let r = first; r.done !== true; r = await records.next()) if (visible(r.value)) yield JSON.stringify(r.value) + '\n'
    }
    reply.type('application/x-ndjson; charset=utf-8')
    return reply.send(Readable.from(lines()))
  })

  app.get<{ Querystring: Record<string, string | undefined> }>('/audit', {
    onRequest: guard,
    schema: {
      summary: 'Audit entries, newest first',
      tags: ['admin'],
      security: [{ adminKey: [] }],
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          event: { type: 'string', enum: AUDIT_EVENTS },
          subject: { type: 'string', maxLength: 512 },
          action: { type: 'string', maxLength: ACTION_MAX_LENGTH },
          decisionId: { type: 'string', maxLength: 64 },
          from: { type: 'string', maxLength: 40 },
          to: { type: 'string', maxLength: 40 },
          limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$' }
        }
      }
    }
  }, async request => {
    const q = request.query
    const from = parseTime('from', q.from)
    const to = parseTime('to', q.to)
    if (from !== undefined && to !== undefined && from > to) throw badRequest('from', 'must not be after to')
    // A caller scoped to tenants reads only their entries (filtered from a wider page, then cut to the limit).
    const tenants = deps.tenantsOf?.(request)
    const limit = q.limit === undefined ? 100 : Number(q.limit)
    const entries = await deps.audit.query({
      ...(q.event !== undefined ? { event: q.event } : {}),
      ...(q.subject !== undefined ? { subject: q.subject } : {}),
      ...(q.action !== undefined ? { action: q.action } : {}),
      ...(q.decisionId !== undefined ? { decisionId: q.decisionId } : {}),
      ...(from !== undefined ? { from } : {}),
      ...(to !== undefined ? { to } : {}),
      limit: tenants === undefined ? limit : 1000
    })
    if (tenants === undefined) return { entries }
    return { entries: entries.filter(e => e.tenant !== undefined && tenants.includes(e.tenant)).slice(0, limit) }
  })
}

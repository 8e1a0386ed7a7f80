/** Liveness and readiness: no key needed (docs/operations.md#health-and-readiness). */
import type { FastifyPluginAsync } from 'fastify'
import type { PolicyHolder } from '../policy/load.js'
import type { GeoLookup } from '../signals/geo.js'
import type { HistoryStore } from '../signals/history.js'

/** /readyz needs no key: it shows how many problems a refused reload had and the first few, shortened. */
const SHOWN_PROBLEMS = 5
const PROBLEM_CHARS = 300

export interface HealthRouteOptions { policies: PolicyHolder, geo: () => GeoLookup, history: HistoryStore }

export const healthRoutes: FastifyPluginAsync<HealthRouteOptions> = async (app, deps) => {
  app.get('/healthz', { schema: { summary: 'Liveness: the process answers', tags: ['operations'], security: [] } }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: {
      summary: 'Ready when a policy set serves and the geo database is loaded',
      description: '200 while a good policy set serves, even if the last reload was refused or the history store is degraded (both are reported); 503 until the geo database is loaded.',
      tags: ['operations'],
      security: []
    }
  }, async (_request, reply) => {
    const geo = deps.geo()
    const historyOk = await deps.history.ping()
    const lastError = deps.policies.lastError
    const set = deps.policies.current
    const degraded = !historyOk || lastError !== undefined || geo.describe().error !== undefined
    reply.code(geo.ready ? 200 : 503)
    return {
      status: !geo.ready ? 'not_ready' : degraded ? 'degraded' : 'ready',
      policies: {
        count: set.policies.length,
        hash: set.hash,
        revision: set.revision,
        loadedAt: deps.policies.loadedAt.toISOString(),
        ...(lastError
          ? {
              lastError: lastError.problems.slice(0, SHOWN_PROBLEMS).map(p => `${p.file}:${p.line}:${p.col} ${p.field}: ${p.message}`.slice(0, PROBLEM_CHARS)),
              lastErrorCount: lastError.problems.length
            }
          : {})
      },
      geo: { ready: geo.ready, ...geo.describe() },
      history: { store: deps.history.kind, ok: historyOk }
    }
  })
}

/**
 * The playground (`/playground`): try a decision in the browser and see why it was made, or
 * test an edited policy file against a request without touching the set that serves.
 *
 * Its decisions are dry runs: they read the history but never teach it, consume a once-only
 * authentication, write the audit trail or count in the metrics.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { pino } from 'pino'
import { formatProblem, PolicyLoadError } from '../errors.js'
import { decideRequestSchema, normalizeDecideBody, toDecideResponse, type DecideBody } from '../contract/index.js'
import type { Guard } from '../http/auth.js'
import { DECIDE_EXAMPLES, EXAMPLES_NOW_S } from '../http/openapi-docs.js'
import { PolicyHolder } from '../policy/load.js'
import { readPolicyFolder } from '../policy/source.js'
import { createWorkerLoader, type TriedFile, type WorkerLoader } from '../policy/worker-load.js'
import { createDecisionService, type DecisionService } from '../service.js'
import type { GeoLookup } from '../signals/geo.js'
import type { HistoryStore } from '../signals/history.js'
import { clientAnswer } from './client-view.js'
import { PAGE_CSS, PAGE_HTML, PAGE_SCRIPT } from './page.js'
import { reasonsTree, traceTree } from './trace-tree.js'

/** open: anyone who reaches the port (loopback, no API keys); admin: the API needs an admin key; off: no playground. */
export type PlaygroundAccess = 'open' | 'admin' | 'off'

export interface PlaygroundDeps {
  access: PlaygroundAccess
  /** onRequest hooks guarding the API in `admin` mode. */
  guard: Guard[]
  policies: PolicyHolder
  geo: () => GeoLookup
  history: HistoryStore
  now: () => number
  /** The live policy folder, so an edited file can be tried together with the others. */
  policiesDir?: string | undefined
  /**
   * Where an edited file is checked. Default: a loading worker of the playground's own (started
   * on the first try, stopped with the app), so tries never queue in front of a reload.
   */
  loader?: WorkerLoader
}

interface TryBody {
  request: DecideBody
  policy?: { file?: string, text: string }
}

/** A relative name inside the folder; it is never opened, but `..` and hidden names are refused anyway. */
const POLICY_FILE = '^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*\\.ya?ml$'

/** The history as the playground sees it: read, never written (a write answers as if it succeeded). */
const dryRun = (history: HistoryStore): HistoryStore => ({
  ...history,
  record: async () => {},
  consume: async () => true,
  psd2: {
    read: (...args) => history.psd2.read(...args),
    exempt: async () => true,
    completeSca: async () => true,
    recordFailure: async () => {},
    clearFailures: async () => {}
  },
  close: async () => {}
})

/** A try is one person's edit: shorter than a reload's 20 s (the pane takes 60,000 characters). */
const TRY_LIMITS = { timeoutMs: 5_000 }

/** Where the playground may run: open on loopback without API keys, else behind the admin key. */
export function playgroundAccess (options: { loopback: boolean, apiKeys: readonly string[], adminApiKeys: readonly string[] }): PlaygroundAccess {
  if (options.loopback && options.apiKeys.length === 0) return 'open'
  return options.adminApiKeys.length > 0 ? 'admin' : 'off'
}

/** The example requests, with `auth_time` moved so each session is as old as in the example. */
export function exampleRequests (nowSeconds: number): Array<{ name: string, summary: string, request: Record<string, unknown> }> {
  const known = decideRequestSchema.properties as Record<string, unknown>
  return Object.entries(DECIDE_EXAMPLES)
    .filter(([, e]) => Object.keys(e.request).every(k => k in known))
    .map(([name, e]) => {
      const request = structuredClone(e.request) as Record<string, unknown> & { claims?: Record<string, unknown> }
      if (request.claims !== undefined && typeof request.claims.auth_time === 'number') {
        request.claims.auth_time = Math.floor(nowSeconds) - (EXAMPLES_NOW_S - request.claims.auth_time)
      }
      return { name, summary: e.summary, request }
    })
}

export const playgroundRoutes: FastifyPluginAsync<PlaygroundDeps> = async (app, deps) => {
  if (deps.access === 'off') return
  const guard = deps.access === 'admin' ? deps.guard : []
  const silent = pino({ level: 'silent' })
  const serviceFor = (policies: PolicyHolder): DecisionService => createDecisionService({
    policies,
    geo: { lookup: ip => deps.geo().lookup(ip), get ready () { return deps.geo().ready }, describe: () => deps.geo().describe(), close: () => {} },
    history: dryRun(deps.history),
    logger: silent,
    now: deps.now
  })
  const live = serviceFor(deps.policies)
  let own: WorkerLoader | undefined
  const loader = (): WorkerLoader => deps.loader ?? (own ??= createWorkerLoader())
  app.addHook('onClose', async () => { await own?.close() })

  const asset = (type: string, body: string) => async (_request: FastifyRequest, reply: FastifyReply) => reply
    .type(type)
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    .header('x-content-type-options', 'nosniff')
    .send(body)
  const hidden = { schema: { hide: true } }
  app.get('/playground', hidden, asset('text/html; charset=utf-8', PAGE_HTML.replace('{{ACCESS}}', deps.access)))
  app.get('/playground/app.js', hidden, asset('text/javascript; charset=utf-8', PAGE_SCRIPT))
  app.get('/playground/style.css', hidden, asset('text/css; charset=utf-8', PAGE_CSS))

  app.get('/playground/api/examples', { ...hidden, onRequest: guard }, async () => {
    const files = deps.policiesDir !== undefined ? (await readPolicyFolder(deps.policiesDir).catch(() => ({ policies: [] }))).policies : []
    const set = deps.policies.current
    return {
      examples: exampleRequests(deps.now() / 1000),
      files: files.map(f => ({ file: f.file, text: f.text })),
      live: { hash: set.hash, policies: set.policies.length }
    }
  })

  app.post<{ Body: TryBody }>('/playground/api/decide', {
    onRequest: guard,
    schema: {
      hide: true,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['request'],
        properties: {
          request: decideRequestSchema,
          policy: {
            type: 'object',
            additionalProperties: false,
            required: ['text'],
            properties: {
              file: { type: 'string', maxLength: 200, pattern: POLICY_FILE },
              text: { type: 'string', maxLength: 60_000 }
            }
          }
        }
      }
    }
  }, async request => {
    const { policy } = request.body
    let service = live
    let holder = deps.policies
    let candidate: Record<string, unknown> | undefined
    if (policy !== undefined) {
      const file = policy.file ?? 'playground.yaml'
      // Checked as a reload would be, in the playground's own loading worker: compiling a big
      // folder, or a hostile file, never holds this thread (and a try past its limits is refused).
      const tried: TriedFile = await loader().tryFile(deps.policiesDir, { file, text: policy.text }, TRY_LIMITS).catch((err: unknown) => {
        if (err instanceof PolicyLoadError) return { problems: err.problems, files: [file], replaced: false }
        // Anything else (no thread could start, say) is this try's problem, never a 5xx.
        request.log.warn({ err }, 'playground: the edited file could not be checked')
        return { problems: [{ file, line: 1, col: 1, field: '(load)', message: 'the file could not be checked here; try again', severity: 'error' as const }], files: [file], replaced: false }
      })
      const { set, problems } = tried
      const errors = problems.filter(p => p.severity === 'error').map(formatProblem)
      const warnings = problems.filter(p => p.severity === 'warning').map(formatProblem)
      candidate = { file, replaced: tried.replaced, files: tried.files.length, errors, warnings }
      if (set === undefined || errors.length > 0) return { candidate }
      holder = new PolicyHolder(set, deps.now)
      service = serviceFor(holder)
    }
    const normalized = normalizeDecideBody(request.body.request, holder.current.assurance)
    const result = await service.decide(normalized, { trace: true })
    const { decisionId, decision } = result
    const answer = toDecideResponse(result)
    return {
      ...(candidate !== undefined ? { candidate } : {}),
      decision: answer,
      client: clientAnswer(decisionId, decision),
      traced: decision.trace !== undefined,
      tree: decision.trace !== undefined ? traceTree(decision.trace) : reasonsTree(decision.reasons, decision.reportOnly)
    }
  })
}

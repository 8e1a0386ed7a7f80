/**
 * Gateway routes: method + host + path (find-my-way, the router Fastify uses) to an action,
 * resource, application and context read from the path parameters, the query and headers.
 * A request no route matches becomes `http.<method>` with `context.path`, so policies can guard
 * `http.**` and nothing is silently outside the policies.
 */
import FindMyWay, { type HTTPMethod } from 'find-my-way'

export interface RawRoute {
  match: { methods?: Method[], host?: string, path: string }
  action: string
  resource?: string
  application?: string
  context?: Record<string, string>
}

export interface RouteRequest {
  method: string
  host: string | undefined
  /** Path and query as the client sent them. */
  url: string
  headers: Record<string, string | string[] | undefined>
}

export interface MappedRequest {
  action: string
  resource: string | undefined
  application: string | undefined
  context: Record<string, unknown>
  matched: boolean
}

export interface RouteTable {
  map: (request: RouteRequest) => MappedRequest
  readonly size: number
}

/** The methods a route may name (the policy schema's enum). */
const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const satisfies readonly HTTPMethod[]
export type Method = typeof ALL_METHODS[number]
const isMethod = (method: string): method is Method => (ALL_METHODS as readonly string[]).includes(method)
const NUMBER = /^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,10})?$/
const MAX_PATH = 4096

/** A value from the request: numbers parsed, everything else a string. */
const typed = (v: string): string | number => (NUMBER.test(v) ? Number(v) : v)

/** Compiles the routes; `onError(index, message)` for a route the router refuses. */
export function compileRoutes (routes: RawRoute[], onError: (index: number, message: string) => void): RouteTable {
  const router = FindMyWay({ ignoreTrailingSlash: true, caseSensitive: true, maxParamLength: 500 })
  routes.forEach((route, i) => {
    const methods = route.match.methods ?? ALL_METHODS
    const opts = route.match.host === undefined ? {} : { constraints: { host: route.match.host.toLowerCase() } }
    try {
      router.on([...methods], route.match.path, opts, () => {}, route)
    } catch (err) {
      onError(i, `match.path: ${(err as Error).message.split('\n')[0]}`)
    }
  })

  return {
    size: routes.length,
    map (request) {
      const method = request.method.toUpperCase()
      const q = request.url.indexOf('?')
      const rawPath = (q === -1 ? request.url : request.url.slice(0, q)).slice(0, MAX_PATH)
      const query = q === -1 ? '' : request.url.slice(q + 1)
      const host = request.host?.toLowerCase()
      let found: ReturnType<typeof router.find> = null
      if (isMethod(method) && rawPath.startsWith('/')) {
        try {
          found = router.find(method, rawPath, host === undefined ? {} : { host })
          // A host-less route also answers for a request whose host no route names.
          found ??= host === undefined ? null : router.find(method, rawPath, {})
        } catch {
          found = null
        }
      }
      if (!found) {
        return { action: `http.${/^[A-Za-z]{1,20}$/.test(method) ? method.toLowerCase() : 'other'}`, resource: undefined, application: undefined, context: { path: rawPath }, matched: false }
      }
      const route = found.store as RawRoute
      const context: Record<string, unknown> = {}
      let params: URLSearchParams | undefined
      for (const [key, source] of Object.entries(route.context ?? {})) {
        const dot = source.indexOf('.')
        const kind = source.slice(0, dot)
        const name = source.slice(dot + 1)
        let value: string | undefined
        if (kind === 'params') value = found.params[name]
        else if (kind === 'query') { params ??= new URLSearchParams(query); value = params.get(name) ?? undefined } else {
          const h = request.headers[name.toLowerCase()]
          value = Array.isArray(h) ? h[0] : h
        }
        if (value !== undefined) context[key] = typed(value.slice(0, 1000))
      }
      return { action: route.action, resource: route.resource, application: route.application, context, matched: true }
    }
  }
}

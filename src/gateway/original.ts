/**
 * The original request a gateway asks about, read the way each gateway sends it:
 * nginx `auth_request` (X-Original-Method, X-Original-URL or X-Original-URI + Host), Traefik /
 * Caddy / HAProxy forward-auth (X-Forwarded-Method, -Proto, -Host, -Uri), and Envoy's HTTP
 * ext_authz service (its own method, the path after the prefix, Host).
 */
import { badRequest } from '../errors.js'

export interface OriginalRequest {
  method: string
  host: string | undefined
  /** Path and query. */
  url: string
}

type Headers = Record<string, string | string[] | undefined>

const one = (headers: Headers, name: string): string | undefined => {
  const v = headers[name]
  const s = Array.isArray(v) ? v[0] : v
  return s === undefined || s === '' ? undefined : s
}

const METHOD = /^[A-Za-z]{1,20}$/

function method (headers: Headers, name: string): string {
  const m = one(headers, name)
  if (m === undefined) throw badRequest(name, 'required: the original request\'s method')
  if (!METHOD.test(m)) throw badRequest(name, 'not an HTTP method')
  return m.toUpperCase()
}

const hostOf = (value: string | undefined): string | undefined =>
  value === undefined ? undefined : value.split(',')[0]!.trim().replace(/:(80|443)$/, '').toLowerCase().slice(0, 253)

function pathAndQuery (value: string, field: string): string {
  if (!value.startsWith('/') || value.length > 8192 || !/^[\x21-\x7e]+$/.test(value)) throw badRequest(field, 'must be a path starting with "/"')
  return value
}

export function fromAuthRequest (headers: Headers): OriginalRequest {
  const m = method(headers, 'x-original-method')
  const url = one(headers, 'x-original-url')
  if (url !== undefined) {
    let parsed: URL
    try { parsed = new URL(url) } catch { throw badRequest('x-original-url', 'not an absolute URL') }
    return { method: m, host: hostOf(parsed.host), url: parsed.pathname + parsed.search }
  }
  const uri = one(headers, 'x-original-uri')
  if (uri === undefined) throw badRequest('x-original-url', 'required (or X-Original-URI with Host)')
  return { method: m, host: hostOf(one(headers, 'x-forwarded-host') ?? one(headers, 'host')), url: pathAndQuery(uri, 'x-original-uri') }
}

export function fromForwardAuth (headers: Headers): OriginalRequest {
  const uri = one(headers, 'x-forwarded-uri') ?? '/'
  return { method: method(headers, 'x-forwarded-method'), host: hostOf(one(headers, 'x-forwarded-host')), url: pathAndQuery(uri, 'x-forwarded-uri') }
}

export function fromExtAuthz (requestMethod: string, url: string, headers: Headers, prefix: string): OriginalRequest {
  const rest = url.slice(prefix.length)
  return { method: requestMethod.toUpperCase(), host: hostOf(one(headers, 'host')), url: pathAndQuery(rest === '' || rest.startsWith('?') ? '/' + rest : rest, 'path') }
}

/** The user's token from `Authorization`: Bearer or DPoP; another scheme is no token. */
export function tokenFrom (headers: Headers): { value: string, scheme: 'Bearer' | 'DPoP' } | undefined | 'malformed' {
  const h = one(headers, 'authorization')
  if (h === undefined) return undefined
  const m = /^(Bearer|DPoP)(?:\s+(.*))?$/i.exec(h)
  if (!m) return undefined
  const value = (m[2] ?? '').trim()
  if (value === '' || /\s/.test(value)) return 'malformed'
  return { value, scheme: m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer' }
}

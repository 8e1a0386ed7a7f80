/**
 * Bearer API keys. Keys are compared in constant time through their SHA-256 digests, so
 * neither the content nor the length of a key leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { send } from './errors.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export type KeyCheck = (header: string | undefined) => boolean

/** An onRequest hook that answers 401 to a caller without a valid key; routes take a list of them (empty: open). */
export type Guard = onRequestHookHandler

export function keyChecker (keys: readonly string[]): KeyCheck {
  const digests = keys.map(k => digest(parseKeyEntry(k).key)) // a named entry (name:key) is checked by its key
  return header => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
    if (!m) return false
    const candidate = digest(m[1]!)
    let ok = false
    for (const d of digests) ok = timingSafeEqual(d, candidate) || ok // check every key: no early exit
    return ok
  }
}

/** An onRequest hook: a caller without a valid key gets 401 before its body is even parsed. */
export function requireKey (check: KeyCheck, realm: string): Guard {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (check(request.headers.authorization)) return
    reply.header('www-authenticate', `Bearer realm="${realm}"`)
    await send(reply, 'unauthorized', 'authorization: a valid API key is required (Authorization: Bearer <key>)')
  }
}

/** An `API_KEYS` entry: `name:key`, or a bare key (no name, so no `callers:` scope). */
export function parseKeyEntry (entry: string): { name: string | undefined, key: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):(\S{16,})$/.exec(entry)
  return m ? { name: m[1], key: m[2]! } : { name: undefined, key: entry }
}

export interface Caller { name: string | undefined }

/** Which `API_KEYS` entry a presented key is: constant time, every key compared. */
export function callerIdentifier (entries: readonly string[]): (key: string | undefined) => Caller | undefined {
  const parsed = entries.map(parseKeyEntry).map(e => ({ name: e.name, digest: digest(e.key) }))
  return key => {
    if (key === undefined || key === '') return undefined
    const candidate = digest(key)
    let found: Caller | undefined
    for (const e of parsed) if (timingSafeEqual(e.digest, candidate) && found === undefined) found = { name: e.name }
    return found
  }
}

const callers = new WeakMap<FastifyRequest, Caller>()

/** The caller an onRequest guard identified (undefined when API_KEYS is unset). */
export const callerOf = (request: FastifyRequest): Caller | undefined => callers.get(request)

/**
 * An onRequest guard for API callers: the key from `Authorization: Bearer` (API routes), or from
 * `X-Stepup-Key` (gateway routes, where `Authorization` holds the user's token).
 */
export function requireCaller (identify: (key: string | undefined) => Caller | undefined, from: 'authorization' | 'x-stepup-key', realm = 'stepup-pdp'): Guard {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers[from]
    const raw = typeof header === 'string' ? header : undefined
    const key = from === 'authorization' ? /^Bearer\s+(\S+)\s*$/i.exec(raw ?? '')?.[1] : raw?.trim()
    const caller = identify(key)
    if (caller) { callers.set(request, caller); return }
    if (from === 'authorization') {
      reply.header('www-authenticate', `Bearer realm="${realm}"`)
      await send(reply, 'unauthorized', 'authorization: a valid API key is required (Authorization: Bearer <key>)')
    } else {
      await send(reply, 'unauthorized', 'x-stepup-key: a valid API key is required (X-Stepup-Key: <key>)')
    }
  }
}

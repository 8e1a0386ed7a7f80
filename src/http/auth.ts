/**
 * Bearer API keys. Keys are compared in constant time through their SHA-256 digests, so
 * neither the content nor the length of a key leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { send } from './errors.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

export type KeyCheck = (header: string | undefined) => boolean

export function keyChecker (keys: readonly string[]): KeyCheck {
  const digests = keys.map(digest)
  return (header) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
    if (!m) return false
    const candidate = digest(m[1]!)
    let ok = false
    for (const d of digests) ok = timingSafeEqual(d, candidate) || ok // check every key: no early exit
    return ok
  }
}

/** An onRequest hook: a caller without a valid key gets 401 before its body is even parsed. */
export function requireKey (check: KeyCheck, realm: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (check(request.headers.authorization)) return
    reply.header('www-authenticate', `Bearer realm="${realm}"`)
    await send(reply, 'unauthorized', 'authorization: a valid API key is required (Authorization: Bearer <key>)')
  }
}

/**
 * Fetching JSON from an issuer (discovery documents, JWKS, introspection): bounded in time and
 * in size, so a slow or huge answer costs one timeout, never a stalled or bloated process.
 */

export const MAX_ISSUER_DOCUMENT_BYTES = 512 * 1024

export class FetchFailed extends Error {}

export interface FetchedJson {
  body: unknown
  /** Seconds the answer may be cached, from Cache-Control (undefined when it says nothing). */
  maxAge: number | undefined
}

export function cacheMaxAge (header: string | null): number | undefined {
  if (header === null) return undefined
  const directives = header.toLowerCase().split(',').map(d => d.trim())
  if (directives.some(d => d === 'no-store' || d === 'no-cache')) return 0
  for (const name of ['s-maxage', 'max-age']) {
    const d = directives.find(x => x.startsWith(name + '='))
    if (d !== undefined) {
      const n = Number(d.slice(name.length + 1).replace(/"/g, ''))
      if (Number.isFinite(n) && n >= 0) return n
    }
  }
  return undefined
}

export async function fetchJson (url: string, timeoutMs: number, init: RequestInit = {}): Promise<FetchedJson> {
  let response: Response
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json', ...(init.headers as Record<string, string> | undefined) } })
  } catch (err) {
    throw new FetchFailed((err as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable')
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => {})
    throw new FetchFailed(`HTTP ${response.status}`)
  }
  const text = await readLimited(response, timeoutMs)
  let body: unknown
  try { body = JSON.parse(text) } catch { throw new FetchFailed('not JSON') }
  return { body, maxAge: cacheMaxAge(response.headers.get('cache-control')) }
}

async function readLimited (response: Response, timeoutMs: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN)
  if (declared > MAX_ISSUER_DOCUMENT_BYTES) { await response.body?.cancel().catch(() => {}); throw new FetchFailed('too large') }
  const reader = response.body?.getReader()
  if (!reader) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const deadline = setTimeout(() => { void reader.cancel().catch(() => {}) }, timeoutMs)
  try {
    for (;;) {
      let part: { done: boolean, value?: Uint8Array }
      try { part = await reader.read() } catch { throw new FetchFailed('timed out') }
      if (part.done) break
      const value = part.value ?? new Uint8Array(0)
      size += value.byteLength
      if (size > MAX_ISSUER_DOCUMENT_BYTES) { await reader.cancel().catch(() => {}); throw new FetchFailed('too large') }
      chunks.push(value)
    }
  } finally {
    clearTimeout(deadline)
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw new FetchFailed('not UTF-8')
  }
}

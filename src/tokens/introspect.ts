/** RFC 7662 token introspection, for opaque tokens of issuers that declare an endpoint. */
import { fetchJson, FetchFailed } from './fetch-json.js'
import type { IssuerConfig } from './issuer.js'

export type Introspection = Record<string, unknown> | 'inactive' | 'unavailable'

export async function introspect (token: string, config: NonNullable<IssuerConfig['introspection']>, secret: string | undefined, timeoutMs: number): Promise<Introspection> {
  if (secret === undefined) return 'unavailable'
  const basic = Buffer.from(`${encodeURIComponent(config.clientId)}:${encodeURIComponent(secret)}`).toString('base64')
  try {
    const { body } = await fetchJson(config.endpoint, timeoutMs, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString()
    })
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'unavailable'
    const answer = body as Record<string, unknown>
    return answer.active === true ? answer : 'inactive'
  } catch (err) {
    if (err instanceof FetchFailed) return 'unavailable'
    throw err
  }
}

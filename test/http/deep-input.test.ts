// Input of any depth and size gets a 4xx, never a 500 (a stack overflow in a recursive check).
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, session } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const { app } = await buildTestApp({ geo })
t.teardown(() => app.close())

/** `{"a":{"a":…1…}}` as JSON text (JSON.stringify itself overflows at this depth). */
const nested = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
const nestedArrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth)

const post = (payload: string): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url: '/decide', payload, headers: { 'content-type': 'application/json' } })
const base = { action: 'profile.read', ...session('user-1', ['pwd']) }
/** The base request with `field` set to raw JSON text. */
const withRaw = (field: string, json: string): string => JSON.stringify({ ...base, [field]: '@@' }).replace('"@@"', json)

t.test('a context nested 5,000 and 10,000 levels is a 400 naming context', async t => {
  for (const depth of [5, 5_000, 10_000]) {
    const res = await post(withRaw('context', nested(depth)))
    t.equal(res.statusCode, 400, `depth ${depth}: ${res.body.slice(0, 200)}`)
    t.equal(res.json().error, 'invalid_request')
    t.match(res.json().message, /context/)
  }
})

t.test('deep arrays inside context, claims and unknown fields are 4xx', async t => {
  const arrays = nestedArrays(20_000)
  for (const [name, payload] of [
    ['context.a', `{"action":"profile.read","subject":{"id":"u"},"context":{"a":${arrays}}}`],
    ['claims.amr', `{"action":"profile.read","subject":{"id":"u"},"claims":{"amr":${arrays}}}`],
    ['a __proto__ key 9,000 levels down', `{"action":"profile.read","subject":{"id":"u"},"context":${'{"a":'.repeat(9000)}{"__proto__":{"x":1}}${'}'.repeat(9000)}}`],
    ['unknown top-level field', `{"action":"profile.read","subject":{"id":"u"},"zzz":${arrays}}`],
    ['a bare deep array', arrays]
  ] as const) {
    const res = await post(payload)
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${name}: ${res.statusCode} ${res.body.slice(0, 200)}`)
  }
})

t.test('deep claims get a 400 naming claims (any depth), a token-shaped nesting passes', async t => {
  for (const depth of [9, 10_000]) {
    const claims = JSON.stringify(base.claims).replace(/}$/, `,"x":${nested(depth)}}`)
    const res = await post(withRaw('claims', claims))
    t.equal(res.statusCode, 400, `${depth} levels: ${res.body.slice(0, 200)}`)
    t.match(res.json().message, /^claims: nesting deeper than 8 levels/)
  }
  const ok = JSON.stringify(base.claims).replace(/}$/, ',"cnf":{"jkt":"x"},"authorization_details":[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"1"}}]}')
  t.equal((await post(withRaw('claims', ok))).statusCode, 200)
})

t.test('deeper than the body limit allows is a 413', async t => {
  const res = await post(withRaw('context', nested(30_000)))
  t.equal(res.statusCode, 413, res.body.slice(0, 200))
})

t.test('depth 4 is accepted, 5 is refused', async t => {
  t.equal((await post(withRaw('context', nested(4)))).statusCode, 200, 'a context of 4 levels')
  t.equal((await post(withRaw('context', nested(5)))).statusCode, 400)
})

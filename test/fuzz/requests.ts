/**
 * Generators of POST /decide requests for the fuzzers, aware of the request schema: valid
 * requests (actions the example policies guard, real sessions, addresses in every spelling),
 * near-valid ones (one field wrong: type, range, length, an extra field, a control character)
 * and hostile ones (deep nesting, huge strings and arrays, odd numbers, prototype keys, bodies
 * that are not JSON objects).
 */
import fc from 'fast-check'
import { NOW_S } from '../helpers/app.js'

/** What the fuzzer sends: a JSON value (serialized by inject) or a raw body, with a content type. */
export interface FuzzRequest {
  kind: 'valid' | 'near-valid' | 'hostile'
  /** What this request is, for reports (the body may be too large to print). */
  label: string
  body: unknown
  raw?: string
  contentType?: string
}

const ACTIONS = [
  'payments.payout', 'payments.refund.full', 'payments.payees.add', 'account.email.change', 'account.phone.change',
  'account.api-keys.create', 'account.mfa.totp.add', 'admin.users.delete', 'admin.roles.grant', 'treasury.transfer',
  'treasury.desk.move', 'profile.read', 'fuzz.view', 'a', 'x:y/z-1.2'
]
const TENANTS = ['acme', 'globex', 'ACME', 'acme ', 'tenant-with-a-long-name']
const APPLICATIONS = ['billing-web', 'treasury-desk', 'mobile']
const AMR = ['pwd', 'otp', 'hwk', 'swk', 'face', 'fpt', 'sms', 'mfa', 'pin', 'user', 'pop', 'kba', 'tel', 'unknown-method']
const ACR = ['http://idmanagement.gov/ns/assurance/aal/1', 'http://idmanagement.gov/ns/assurance/aal/2', 'http://idmanagement.gov/ns/assurance/aal/3', 'phrh', 'phr', 'urn:unknown', '0', '']
const FACTORS = ['security_key', 'passkey', 'totp', 'sms', 'email', 'password']

/** Addresses in the spellings that matter: lists, geo, private ranges, every IPv4-embedding IPv6 form. */
export const ODD_IPS = [
  '62.252.0.1', '203.116.0.1', '8.8.8.8', '81.2.69.142', '192.0.2.10', '198.51.100.7', '2001:db8:bad::1',
  '10.0.0.1', '127.0.0.1', '169.254.1.1', '0.0.0.0', '255.255.255.255', '100.64.0.1',
  '::1', '::', 'fe80::1', 'fc00::1', '2001:db8::1', '2a00:1450:4009:81f::200e',
  '::ffff:192.0.2.10', '::ffff:c000:20a', '0:0:0:0:0:ffff:192.0.2.10', '::192.0.2.10', '::c000:20a',
  '2002:c000:20a::1', '64:ff9b::c000:20a', '64:ff9b::192.0.2.10', '2001:0:4136:e378:8000:63bf:3fff:fdd2',
  '2001:0:4136:e378:8000:63bf:3f57:fdf5', '::ffff:62.252.0.1', '2002:3efc:1::1'
]

const ip = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ODD_IPS) },
  { weight: 1, arbitrary: fc.ipV4() },
  { weight: 1, arbitrary: fc.ipV6() }
)

const id = fc.oneof(fc.constantFrom('alice', 'bob', 'carol', 'user-123'), fc.stringMatching(/^[a-z0-9-]{1,12}$/))

// Flat values: with context.extra.<key> that keeps the context within the allowed depth of 4.
const contextValue = fc.oneof(fc.string({ maxLength: 20 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 4 }))
const safeKey = fc.string({ minLength: 1, maxLength: 8 }).filter(k => k !== '__proto__' && k !== 'constructor' && k !== 'prototype')
const context = fc.record({
  amount: fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
  riskScore: fc.double({ min: 0, max: 1, noNaN: true }),
  currency: fc.constantFrom('EUR', 'USD', 'GBP'),
  tags: fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }),
  extra: fc.dictionary(safeKey, contextValue, { maxKeys: 5 })
}, { requiredKeys: [] })

/** A request the schema accepts (or nearly always accepts: a random IPv6 may be rejected by none). */
export const validBody = fc.record({
  action: fc.constantFrom(...ACTIONS),
  tenant: fc.constantFrom(...TENANTS),
  application: fc.constantFrom(...APPLICATIONS),
  subjectId: id,
  enrolledFactors: fc.uniqueArray(fc.constantFrom(...FACTORS), { maxLength: 4 }),
  amr: fc.uniqueArray(fc.constantFrom(...AMR), { maxLength: 4 }),
  acr: fc.constantFrom(...ACR),
  authAgo: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 0, max: 10_000_000 })),
  su: fc.boolean(),
  ip,
  fingerprint: fc.constantFrom('laptop', 'phone', 'tablet', 'd'.repeat(1024)),
  resource: fc.constantFrom('payments', 'reports', 'admin-console'),
  context,
  // Which optional parts to send.
  parts: fc.record({ tenant: fc.boolean(), application: fc.boolean(), claims: fc.boolean(), subject: fc.boolean(), ip: fc.boolean(), device: fc.boolean(), resource: fc.boolean(), context: fc.boolean(), acr: fc.boolean(), su: fc.boolean() })
}).map(v => {
  const body: Record<string, unknown> = { action: v.action }
  const p = v.parts
  if (p.tenant) body.tenant = v.tenant
  if (p.application) body.application = v.application
  // Always one of subject and claims.sub (both, when both, equal): otherwise the request is 400.
  if (p.subject || !p.claims) body.subject = { id: v.subjectId, ...(v.enrolledFactors.length > 0 ? { enrolledFactors: v.enrolledFactors } : {}) }
  if (p.claims) {
    body.claims = {
      sub: v.subjectId,
      amr: v.amr,
      auth_time: NOW_S - v.authAgo,
      iat: NOW_S - v.authAgo,
      exp: NOW_S + 3600,
      ...(p.acr ? { acr: v.acr } : {}),
      ...(p.su ? { su: v.su } : {})
    }
  }
  if (p.ip) body.ip = v.ip
  if (p.device) body.device = { fingerprint: v.fingerprint }
  if (p.resource) body.resource = v.resource
  if (p.context) body.context = v.context
  return body
})

const setPath = (body: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> => {
  const copy: Record<string, unknown> = structuredClone(body)
  let at: Record<string, unknown> = copy
  for (const key of path.slice(0, -1)) {
    if (typeof at[key] !== 'object' || at[key] === null || Array.isArray(at[key])) at[key] = {}
    at = at[key] as Record<string, unknown>
  }
  at[path[path.length - 1]!] = value
  return copy
}

const FIELDS: string[][] = [
  ['action'], ['tenant'], ['application'], ['subject'], ['subject', 'id'], ['subject', 'enrolledFactors'], ['claims'],
  ['claims', 'sub'], ['claims', 'amr'], ['claims', 'acr'], ['claims', 'auth_time'], ['claims', 'iat'], ['claims', 'su'],
  ['ip'], ['device'], ['device', 'fingerprint'], ['resource'], ['context'], ['context', 'riskScore'], ['context', 'amount']
]

const oddString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', 'a\nb', 'a\u007fb', '\u202e', '\ud800', 'é', '😀', 'a..b', '.a', 'a.', '*', '**', 'a b', '%00', '../../etc/passwd', '{{}}', '${jndi:x}')
)
const oddNumber = fc.constantFrom(-1, 2, 1.5, -0, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE, 1e-320)
const oddValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), oddString, oddNumber, fc.constant(null), fc.constant([]), fc.constant({}))

/** One field of a valid request made wrong. */
export const nearValidBody = fc.tuple(validBody, fc.constantFrom(...FIELDS), oddValue, fc.nat(6), fc.string({ maxLength: 10 }))
  .map(([body, path, value, how, key]) => {
    switch (how) {
      case 0: return { label: `${path.join('.')} = ${JSON.stringify(value)?.slice(0, 60)}`, body: setPath(body, path, value) }
      case 1: return { label: `extra top-level field ${JSON.stringify(key)}`, body: { ...body, [key === 'action' ? 'x' : key || 'extra']: value } }
      case 2: { const { action: _a, ...rest } = body; return { label: 'no action', body: rest } }
      case 3: return { label: 'subject.id differs from claims.sub', body: { ...setPath(body, ['subject', 'id'], 'one'), claims: { sub: 'other' } } }
      case 4: return { label: `${path.join('.')} too long`, body: setPath(body, path, 'x'.repeat(1025 + key.length * 100)) }
      case 5: return { label: 'context with 65 keys', body: { ...body, context: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) } }
      default: return { label: 'context nested 5 deep', body: { ...body, context: { a: { b: { c: { d: { e: 1 } } } } } } }
    }
  })

const nest = (depth: number, open: string, inner: string, close: string): string => open.repeat(depth) + inner + close.repeat(depth)

/** Raw bodies no schema would accept, and bodies built to stall or crash a parser or a walker. */
export const hostileRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc.record({ depth: fc.constantFrom(5, 64, 1000, 5000, 10_000, 12_000), where: fc.constantFrom('context', 'claims', 'subject', 'top'), arrays: fc.boolean() })
    .map(({ depth, where, arrays }) => {
      const inner = arrays ? nest(depth, '[', '1', ']') : nest(depth, '{"a":', '1', '}')
      const raw = where === 'top' ? inner : `{"action":"payments.payout","subject":{"id":"deep"},"${where}":${arrays ? `{"x":${inner}}` : inner}}`
      return { kind: 'hostile' as const, label: `${where} nested ${depth} deep (${arrays ? 'arrays' : 'objects'})`, body: undefined, raw }
    }),
  fc.record({ size: fc.constantFrom(1000, 30_000, 60_000, 70_000), field: fc.constantFrom('action', 'tenant', 'subject.id', 'context.note', 'device.fingerprint', 'claims.acr') })
    .map(({ size, field }) => ({
      kind: 'hostile' as const,
      label: `${field} of ${size} characters`,
      body: setPath({ action: 'payments.payout', subject: { id: 'big' } }, field.split('.'), 'x'.repeat(size))
    })),
  fc.record({ n: fc.constantFrom(100, 5000, 20_000), field: fc.constantFrom('claims.amr', 'subject.enrolledFactors', 'context.list') })
    .map(({ n, field }) => ({
      kind: 'hostile' as const,
      label: `${field} with ${n} items`,
      body: setPath({ action: 'payments.payout', subject: { id: 'many' }, claims: { sub: 'many' } }, field.split('.'), Array.from({ length: n }, (_, i) => `v${i % 50}`))
    })),
  fc.constantFrom(
    ['big exponent', '{"action":"payments.payout","subject":{"id":"n"},"context":{"amount":1e400,"riskScore":1e-400}}'],
    ['negative big exponent', '{"action":"payments.payout","subject":{"id":"n"},"claims":{"sub":"n","auth_time":-1e400}}'],
    ['long integer', '{"action":"payments.payout","subject":{"id":"n"},"context":{"amount":123456789012345678901234567890123456789}}'],
    ['duplicate keys', '{"action":"profile.read","action":"payments.payout","subject":{"id":"d"}}'],
    ['__proto__ at the top', '{"action":"payments.payout","subject":{"id":"p"},"__proto__":{"isAdmin":true}}'],
    ['__proto__ in context', '{"action":"payments.payout","subject":{"id":"p"},"context":{"__proto__":{"amount":5000},"constructor":{"prototype":{"x":1}}}}'],
    ['__proto__ in claims', '{"action":"payments.payout","subject":{"id":"p"},"claims":{"sub":"p","__proto__":{"amr":["hwk"]}}}'],
    ['lone surrogate', '{"action":"payments.payout","subject":{"id":"\\ud800"},"tenant":"\\udfff"}'],
    ['byte order mark', '\ufeff{"action":"payments.payout","subject":{"id":"b"}}'],
    ['not JSON', '{"action":'],
    ['empty body', ''],
    ['null', 'null'],
    ['array', '[]'],
    ['number', '1'],
    ['string', '"payments.payout"'],
    ['true', 'true'],
    ['NUL inside', '{"action":"pay\u0000ments","subject":{"id":"n"}}'],
    ['escaped NUL', '{"action":"payments.payout","subject":{"id":"a\\u0000b"}}'],
    ['trailing garbage', '{"action":"payments.payout","subject":{"id":"t"}} x'],
    ['many keys', `{"action":"payments.payout","subject":{"id":"k"},"context":{${Array.from({ length: 3000 }, (_, i) => `"k${i}":${i}`).join(',')}}}`]
  ).map(([label, raw]) => ({ kind: 'hostile' as const, label: label!, body: undefined, raw: raw! })),
  fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/xml', 'application/json-patch+json')
    .map(contentType => ({ kind: 'hostile' as const, label: `content-type ${contentType}`, body: undefined, raw: '{"action":"payments.payout","subject":{"id":"c"}}', contentType }))
)

/** The mix the fuzzers send: half valid, three in ten near-valid, one in five hostile. */
export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 5, arbitrary: validBody.map(body => ({ kind: 'valid' as const, label: 'valid', body })) },
  { weight: 3, arbitrary: nearValidBody.map(({ label, body }) => ({ kind: 'near-valid' as const, label, body })) },
  { weight: 2, arbitrary: hostileRequest }
)

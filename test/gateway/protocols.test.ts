// Each gateway's request shape, as its documentation says it sends it (Traefik, Caddy and Envoy
// cannot be installed here): the original request, the token, the client address, the answers.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { clientIpResolver } from '../../src/gateway/client-ip.js'
import { cleanup, tokenApp } from '../tokens/app.js'
import { makeKey, TestIssuer } from '../tokens/issuer-server.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const issuer = await new TestIssuer().start()
t.teardown(() => issuer.stop())
issuer.keys = [await makeKey('ES256', 'k1')]

const folder = `
issuers:
  - issuer: ${issuer.url}
    audience: [https://api.example.com]
routes:
  - match: { methods: [POST], host: api.example.com, path: /v1/payouts/:id }
    action: payments.payout
    resource: payments
    context: { payoutId: params.id, amount: header.x-payout-amount, currency: query.currency }
  - match: { path: /v1/reports/:year }
    action: reports.read
    context: { year: params.year }
policies:
  - id: big-payouts
    actions: [payments.payout]
    when:
      - condition: has(context.amount) && context.amount > 1000 && context.currency == "EUR" && context.payoutId == "p-1"
    require: { aal: 3, maxAge: 5m }
    message: Confirm with your security key.
  - id: old-reports
    actions: [reports.read]
    when: [condition: "context.year < 2020"]
    effect: deny
  - id: unrouted-writes
    actions: [http.put]
    when: [condition: 'context.path.startsWith("/admin")']
    effect: deny
  - id: sensitive-from-blocked
    actions: [http.get]
    when: [condition: 'ip == "203.0.113.9"']
    effect: deny
`
const { app, dir } = await tokenApp({ geo, files: { 'p.yaml': folder } })
t.teardown(async () => { await app.close(); cleanup(dir) })

const nowS = (): number => Math.floor(Date.now() / 1000)
const bearer = async (amr: string[]) => `Bearer ${await issuer.sign({ sub: 'u1', amr, auth_time: nowS() - 10 })}`

t.test('nginx auth_request: X-Original-Method and X-Original-URL', async t => {
  const res = await app.inject({ method: 'GET', url: '/authz/auth-request', headers: { 'x-original-method': 'POST', 'x-original-url': 'https://api.example.com/v1/payouts/p-1?currency=EUR', 'x-payout-amount': '2500', authorization: await bearer(['pwd', 'otp']) } })
  t.equal(res.statusCode, 401, res.body)
  t.match(res.headers['www-authenticate'], /^Bearer error="insufficient_user_authentication", error_description="Confirm with your security key\.", acr_values="[^"]+", max_age=300$/)
  t.same(Object.keys(res.json()).sort(), ['decisionId', 'error', 'message', 'required'])
  t.equal(res.json().required.aal, 3)
  const small = await app.inject({ method: 'GET', url: '/authz/auth-request', headers: { 'x-original-method': 'POST', 'x-original-url': 'https://api.example.com/v1/payouts/p-1?currency=EUR', 'x-payout-amount': '20', authorization: await bearer(['pwd', 'otp']) } })
  t.equal(small.statusCode, 200)
  t.equal(small.headers['x-stepup-decision'], 'allow')
  t.equal(small.headers['x-stepup-subject'], 'u1')
  t.equal(small.headers['x-stepup-aal'], '2')
  t.equal(small.body, '', 'no body on allow')
  const uri = await app.inject({ method: 'POST', url: '/authz/auth-request', headers: { 'x-original-method': 'GET', 'x-original-uri': '/v1/reports/2019', host: 'api.example.com', 'content-type': 'application/json', authorization: await bearer(['pwd']) } })
  t.equal(uri.statusCode, 403, 'X-Original-URI + Host; numbers parsed from the path; a JSON content type with no body is fine')
  t.equal(uri.json().error, 'access_denied')
})

t.test('Traefik forwardAuth / Caddy forward_auth: GET with X-Forwarded-*', async t => {
  const headers = { 'x-forwarded-method': 'POST', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com', 'x-forwarded-uri': '/v1/payouts/p-1?currency=EUR', 'x-forwarded-for': '198.51.100.7', 'x-payout-amount': '5000', authorization: await bearer(['pwd', 'otp']) }
  const res = await app.inject({ method: 'GET', url: '/authz/forward-auth', headers })
  t.equal(res.statusCode, 401)
  t.match(res.headers['www-authenticate'], /insufficient_user_authentication/)
  const otherHost = await app.inject({ method: 'GET', url: '/authz/forward-auth', headers: { ...headers, 'x-forwarded-host': 'other.example.com' } })
  t.equal(otherHost.statusCode, 200, 'a route bound to a host does not match another host (http.post, unguarded)')
  const admin = await app.inject({ method: 'GET', url: '/authz/forward-auth', headers: { ...headers, 'x-forwarded-method': 'PUT', 'x-forwarded-uri': '/admin/users/1' } })
  t.equal(admin.statusCode, 403, 'unrouted: http.put with context.path')
})

t.test('Envoy ext_authz (HTTP service): the original method, the path after the prefix, Host', async t => {
  const res = await app.inject({ method: 'POST', url: '/authz/ext-authz/v1/payouts/p-1?currency=EUR', headers: { host: 'api.example.com', 'content-length': '0', 'x-payout-amount': '1001', authorization: await bearer(['pwd', 'otp']), 'x-envoy-internal': 'true' } })
  t.equal(res.statusCode, 401)
  const root = await app.inject({ method: 'GET', url: '/authz/ext-authz', headers: { host: 'api.example.com', authorization: await bearer(['pwd']) } })
  t.equal(root.statusCode, 200, 'the prefix alone is the path "/"')
})

t.test('DPoP scheme and bad Authorization headers', async t => {
  const orig = { 'x-original-method': 'GET', 'x-original-url': 'https://api.example.com/v1/reports/2024' }
  const dpop = await app.inject({ method: 'GET', url: '/authz/auth-request', headers: { ...orig, authorization: (await bearer(['pwd'])).replace('Bearer', 'DPoP') } })
  t.equal(dpop.statusCode, 200)
  for (const authorization of ['Bearer', 'Bearer a b', 'Bearer ' + 'x'.repeat(17 * 1024)]) {
    const res = await app.inject({ method: 'GET', url: '/authz/auth-request', headers: { ...orig, authorization } })
    t.ok([400, 401].includes(res.statusCode), `${authorization.slice(0, 12)}: ${res.statusCode}`)
    t.not(res.statusCode, 200)
  }
  const basic = await app.inject({ method: 'GET', url: '/authz/auth-request', headers: { ...orig, authorization: 'Basic dXNlcjpwYXNz' } })
  t.equal(basic.statusCode, 200, 'another scheme is no token: anonymous, and this route is unguarded')
})

t.test('missing or bad original request headers: 400 naming the header', async t => {
  const cases: Array<[Record<string, string>, string]> = [
    [{}, 'x-original-method'],
    [{ 'x-original-method': 'PO ST', 'x-original-url': 'https://a/' }, 'x-original-method'],
    [{ 'x-original-method': 'GET', 'x-original-url': 'not a url' }, 'x-original-url'],
    [{ 'x-original-method': 'GET' }, 'x-original-url'],
    [{ 'x-original-method': 'GET', 'x-original-uri': 'no-slash' }, 'x-original-uri']
  ]
  for (const [headers, field] of cases) {
    const res = await app.inject({ method: 'GET', url: '/authz/auth-request', headers })
    t.equal(res.statusCode, 400)
    t.match(res.json().message, new RegExp(`^${field}:`))
  }
})

t.test('the client address: rightmost X-Forwarded-For entry that is not a trusted proxy', async t => {
  const resolve = clientIpResolver(['127.0.0.0/8', '::1/128', '10.0.0.0/8'])
  t.equal(resolve('127.0.0.1', '203.0.113.9'), '203.0.113.9')
  t.equal(resolve('127.0.0.1', '1.1.1.1, 203.0.113.9, 10.0.0.5'), '203.0.113.9', 'a client-supplied left entry is ignored')
  t.equal(resolve('198.51.100.1', '203.0.113.9'), '198.51.100.1', 'an untrusted peer: its X-Forwarded-For is ignored')
  t.equal(resolve('::ffff:127.0.0.1', '203.0.113.9'), '203.0.113.9', 'IPv4-mapped peer')
  t.equal(resolve('127.0.0.1', 'garbage, 10.0.0.5'), undefined, 'garbage a trusted proxy passed on: unknown, never guessed')
  t.equal(resolve('127.0.0.1', '203.0.113.9, garbage'), undefined)
  t.equal(resolve('127.0.0.1', '0x7f.1'), undefined, 'no exotic IPv4 spellings')
  t.equal(resolve('127.0.0.1', '[2001:db8::1]:443'), '2001:db8::1')
  t.equal(resolve('127.0.0.1', undefined), '127.0.0.1')
  const many = Array.from({ length: 5000 }, (_, i) => `198.51.${i % 250}.${i % 200}`).join(', ')
  const started = performance.now()
  t.equal(resolve('127.0.0.1', many + ', 203.0.113.9'), '203.0.113.9')
  t.ok(performance.now() - started < 50, 'thousands of entries: only the rightmost are read')

  const through = await app.inject({ method: 'GET', url: '/authz/forward-auth', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/x', 'x-forwarded-for': `${many}, 203.0.113.9` } })
  t.equal(through.statusCode, 403, 'the resolved address reaches the policies')
  const spoof = await app.inject({ method: 'GET', url: '/authz/forward-auth', remoteAddress: '198.51.100.1', headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/x', 'x-forwarded-for': '203.0.113.9' } })
  t.equal(spoof.statusCode, 200, 'an untrusted peer cannot claim an address')
})

// The example configurations stay consistent with the service: the policy folder loads, and each
// gateway points at the endpoint and headers the service uses.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { loadPolicySet } from '../../src/policy/load.js'
import { gatewayConfigOf } from '../../src/policy/gateway-config.js'

const at = (path: string): string => fileURLToPath(new URL(`../../examples/${path}`, import.meta.url))

t.test('examples/policies loads, with its issuer, caller and routes', async t => {
  const { set } = await loadPolicySet(at('policies'))
  const config = gatewayConfigOf(set)
  t.equal(config.issuers.length, 1)
  t.ok(config.callers.has('nginx'))
  t.equal(config.routes.map({ method: 'POST', host: 'api.example.com', url: '/v1/payouts/42', headers: { 'x-payout-amount': '1500' } }).context.amount, 1500)
})

t.test('Envoy: ext_authz with the prefix, the key header and the challenge for the client', async t => {
  const envoy = parse(readFileSync(at('envoy/envoy.yaml'), 'utf8'))
  const filter = envoy.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config
  t.equal(filter.failure_mode_allow, false)
  t.equal(filter.http_service.path_prefix, '/authz/ext-authz')
  t.same(filter.http_service.authorization_request.headers_to_add.map((h: { key: string }) => h.key), ['x-stepup-key'])
  t.ok(filter.http_service.authorization_response.allowed_client_headers.patterns.some((p: { exact: string }) => p.exact === 'www-authenticate'))
})

t.test('Traefik and Caddy: forward-auth with the decision headers', async t => {
  const traefik = readFileSync(at('traefik/dynamic.yml'), 'utf8')
  t.match(traefik, /address: "http:\/\/stepup-pdp:8080\/authz\/forward-auth"/)
  t.match(traefik, /X-Stepup-Decision-Id/)
  const caddy = readFileSync(at('caddy/Caddyfile'), 'utf8')
  t.match(caddy, /uri \/authz\/forward-auth/)
  t.match(caddy, /header_up X-Stepup-Key/)
})

// issuers:, callers: and routes: in the policy folder: validated with file, line and field like
// policies, and refused as a whole set when wrong.
import t from 'tap'
import { compilePolicies } from '../../src/policy/compile.js'
import { gatewayConfigOf } from '../../src/policy/gateway-config.js'

const compile = (files: Record<string, string>) =>
  compilePolicies({ policies: Object.entries(files).map(([file, text]) => ({ file, text })), lists: [] })

t.test('valid sections compile, from any number of files', async t => {
  const { set, problems } = compile({
    'a.yaml': 'issuers:\n  - issuer: https://login.example.com/\n    audience: [api]\n    stepUpClaim: { claim: su, maxAge: 10m }\n',
    'b.yaml': 'callers:\n  - name: web\n    tenants: [acme]\nroutes:\n  - match: { path: /a/:id }\n    action: a.read\n',
    'c.yaml': 'routes:\n  - match: { methods: [GET], path: /b }\n    action: b.read\npolicies: []\n'
  })
  t.same(problems.filter(p => p.severity === 'error'), [])
  const config = gatewayConfigOf(set!)
  t.equal(config.issuers.length, 1)
  t.same(config.issuers[0]!.algorithms, ['RS256', 'PS256', 'ES256', 'EdDSA'])
  t.same(config.issuers[0]!.stepUpClaim, { claim: 'su', maxAge: 600 })
  t.equal(config.callers.get('web')?.explain, false)
  t.equal(config.routes.map({ method: 'GET', host: undefined, url: '/a/7?x=1', headers: {} }).action, 'a.read')
  t.same(config.routes.map({ method: 'DELETE', host: undefined, url: '/b', headers: {} }), { action: 'http.delete', resource: undefined, application: undefined, context: { path: '/b' }, matched: false })
})

t.test('errors name file, line and field', async t => {
  const cases: Array<[string, RegExp, number]> = [
    ['issuers:\n  - issuer: https://a.example.com\n    audience: [api]\n    algorithms: [HS256]\n', /issuers\[0\]\.algorithms\[0\]/, 4],
    ['issuers:\n  - issuer: https://a.example.com\n    audience: [api]\n    algorithms: [none]\n', /issuers\[0\]\.algorithms\[0\]/, 4],
    ['issuers:\n  - issuer: https://a.example.com\n', /issuers\[0\]\.audience/, 2],
    ['issuers:\n  - issuer: http://login.example.com\n    audience: [api]\n', /issuers\[0\]\.issuer/, 2],
    ['callers:\n  - name: web\n    tenant: [acme]\n', /callers\[0\]\.tenant/, 3],
    ['routes:\n  - match: { path: /a }\n    action: a\n    context: { x: body.y }\n', /routes\[0\]\.context\.x/, 4],
    ['routes:\n  - match: { path: /a }\n    action: a\n  - match: { path: /a }\n    action: b\n', /routes\[1\]\.match\.path/, 4]
  ]
  for (const [text, field, line] of cases) {
    const { set, problems } = compile({ 'x.yaml': text })
    t.equal(set, undefined, `refused: ${text}`)
    const error = problems.find(p => p.severity === 'error')
    t.match(error?.field, field, JSON.stringify(error))
    t.equal(error?.line, line, JSON.stringify(error))
  }
  const dup = compile({ 'a.yaml': 'issuers:\n  - issuer: https://a.example.com\n    audience: [x]\n', 'b.yaml': 'issuers:\n  - issuer: https://a.example.com\n    audience: [y]\n' })
  t.equal(dup.set, undefined)
  t.match(dup.problems[0]?.message, /already declared in a\.yaml/)
})

// Liveness, readiness (docs/operations.md, docs/failure-rules.md) and the API documentation.
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { openGeoLookup, unavailableGeoLookup, type GeoLookup } from '../../src/signals/geo.js'
import { PolicyLoadError } from '../../src/errors.js'
import { buildTestApp, decide, session } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

async function newApp (t: Test, options: { geo: GeoLookup | (() => GeoLookup), apiKeys?: string[] }): Promise<FastifyInstance> {
  const { app } = await buildTestApp(options)
  t.teardown(() => app.close())
  return app
}

t.test('/healthz answers 200', async t => {
  const app = await newApp(t, { geo })
  const res = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('/readyz is 200 and ready with policies and the geo database loaded', async t => {
  const app = await newApp(t, { geo })
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.status, 'ready')
  t.match(body, { policies: { count: Number }, geo: { ready: true }, history: { store: 'memory', ok: true } })
  t.ok(body.policies.count > 0, 'the example policies are loaded')
})

t.test('/readyz stays 200 while a good set serves after a refused reload, and shows the error', async t => {
  const { app, policies } = await buildTestApp({ geo })
  t.teardown(() => app.close())
  policies.refuse(new PolicyLoadError([{ file: 'payments.yaml', line: 3, col: 5, field: 'policies[0].require.aal', message: 'expected 1, 2 or 3', severity: 'error' }]))
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 200, 'replicas are not all pulled at once')
  t.match(JSON.stringify(res.json()), /payments\.yaml:3/, 'the error is visible')
  t.equal((await decide(app, { action: 'profile.read', ...session('reload-1', ['pwd']) })).decision, 'allow', 'the good set keeps serving')
})

t.test('/readyz is 503 while the geo database is not loaded; /healthz stays 200', async t => {
  const app = await newApp(t, { geo: unavailableGeoLookup('loading') })
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.not(res.json().status, 'ready')
  t.match(res.json(), { geo: { ready: false } })
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

t.test('/readyz turns ready once the geo getter yields a loaded database', async t => {
  let current: GeoLookup = unavailableGeoLookup('loading')
  const app = await newApp(t, { geo: () => current })
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503)
  current = geo
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'ready')
})

t.test('without the geo database, the location triggers fire with a reason (docs/failure-rules.md)', async t => {
  const app = await newApp(t, { geo: unavailableGeoLookup('loading') })
  const body = await decide(app, { action: 'account.email.change', ...session('geo-down-1', ['pwd']), ip: '62.252.0.1' })
  t.equal(body.decision, 'step_up')
  t.match(body.reasons.find(r => r.policy === 'new-country'), { trigger: 'newCountry', outcome: 'step_up', detail: /geo/i },
    'new-country fires and says the geo lookup is unavailable')
})

t.test('Swagger UI and the OpenAPI document', async t => {
  const app = await newApp(t, { geo })

  t.test('GET /docs serves the UI', async t => {
    let res: LightMyRequestResponse = await app.inject({ method: 'GET', url: '/docs' })
    for (let hops = 0; hops < 3 && res.statusCode >= 300 && res.statusCode < 400; hops++) {
      const location = new URL(String(res.headers.location), 'http://localhost/docs')
      res = await app.inject({ method: 'GET', url: location.pathname + location.search })
    }
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /text\/html/)
    t.match(res.body, /swagger/i)
  })

  t.test('GET /docs/json is an OpenAPI document with POST /decide', async t => {
    const res = await app.inject({ method: 'GET', url: '/docs/json' })
    t.equal(res.statusCode, 200)
    const doc = res.json()
    t.match(doc.openapi, /^3\./)
    t.ok(doc.paths?.['/decide'], 'the path /decide')
    t.ok(doc.paths?.['/decide']?.post, 'with POST')
    t.ok(doc.paths?.['/decide']?.post?.requestBody, 'and its request body')
    t.ok(doc.paths?.['/healthz'] && doc.paths?.['/readyz'], 'the health routes too')
  })
})

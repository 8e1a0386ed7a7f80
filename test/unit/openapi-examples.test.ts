// The OpenAPI document an integrator reads: the /decide examples are what the service answers
// (with the example policies in policies/), every operation has an id and described answers,
// and every error code is documented.
import t from 'tap'
import { parse } from 'yaml'
import { ErrorCodes } from '../../src/errors.js'
import { decideRequestSchema } from '../../src/contract/index.js'
import { DECIDE_EXAMPLES, documentOpenApi, EXAMPLES_NOW_S } from '../../src/http/openapi-docs.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { renderOpenApi } from '../../scripts/generated.js'
import { buildTestApp, postDecide } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

type Json = Record<string, unknown>
const known = decideRequestSchema.properties as Json

for (const [name, example] of Object.entries(DECIDE_EXAMPLES)) {
  const applies = Object.keys(example.request).every(k => k in known)
  // An illustrative example (a token from an issuer the example policies do not declare) is shown, not replayed.
  const skip = example.illustrative === true ? 'illustrative: needs an issuer the example policies do not declare' : applies ? false : 'this build does not accept its fields yet'
  t.test(`the ${name} example is what the service answers`, { skip }, async t => {
    // A fresh app per example: one example's allow must not teach the next one's history.
    const { app } = await buildTestApp({ geo, now: () => EXAMPLES_NOW_S * 1000 })
    t.teardown(() => app.close())
    const res = await postDecide(app, example.request)
    t.equal(res.statusCode, 200, res.body)
    const actual = res.json<Json>()
    const expected = example.response
    for (const key of ['decision', 'required', 'challenge', 'enroll', 'message', 'session', 'reportOnly']) {
      t.same(actual[key], expected[key], key)
    }
    const reasons = actual.reasons as Json[]
    for (const reason of expected.reasons as Json[]) {
      const found = reasons.find(r => r.policy === reason.policy && r.trigger === reason.trigger)
      t.same(found, reason, `reason ${String(reason.policy)}/${String(reason.trigger)}`)
    }
  })
}

t.test('the document names every operation, describes every answer and documents every error code', async t => {
  const doc = parse(await renderOpenApi()) as Json & { paths: Record<string, Record<string, Json>>, components: Json }
  const ids = new Set<string>()
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`
      t.type(operation.operationId, 'string', `${where} has an operationId`)
      t.notOk(ids.has(operation.operationId as string), `${where}: its operationId is unique`)
      ids.add(operation.operationId as string)
      for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
        if (response.$ref !== undefined) continue
        t.not(response.description, 'Default Response', `${where} ${status} is described`)
        t.ok(typeof response.description === 'string' && (response.description as string).length > 10, `${where} ${status} is described`)
      }
    }
  }
  t.same(doc.paths['/decide']!.post!.operationId, 'decide')
  const errorEnum = ((doc.components.schemas as Json).Error as { properties: { error: { enum: string[] } } }).properties.error.enum
  t.same(errorEnum, Object.keys(ErrorCodes), 'the Error schema lists every code')
  const responses = doc.components.responses as Record<string, { content: { 'application/json': { examples?: Record<string, { value: { error: string } }> } } }>
  const documented = new Set(Object.values(responses).flatMap(r => Object.values(r.content['application/json'].examples ?? {}).map(e => e.value.error)))
  for (const [code, { status }] of Object.entries(ErrorCodes)) {
    if (status === 500 || status === 422 || status === 429 || status === 403 || status === 409 || status === 404 || status === 408 || status === 431) continue // only where a route can answer them (408 and 431 come from the HTTP layer, before any route)
    t.ok(documented.has(code), `an example answer carries ${code}`)
  }
  const decide = doc.paths['/decide']!.post! as { requestBody: { content: { 'application/json': { examples: Json } } }, responses: Record<string, { content: { 'application/json': { examples: Json } } }> }
  const requestNames = Object.keys(decide.requestBody.content['application/json'].examples)
  t.same(requestNames.slice(0, 1), ['step_up'], '"Try it out" sends the step-up example by default')
  t.same(Object.keys(decide.responses['200']!.content['application/json'].examples), requestNames, 'each request example has its answer')
  t.ok(Object.keys(decide.responses).includes('503'), '/decide documents 503')
  const formats = [...JSON.stringify(doc).matchAll(/"format":"([^"]+)"/g)].map(m => m[1])
  t.same([...new Set(formats)].sort(), ['ipv4', 'ipv6', 'uuid'], 'only standard formats (the service\'s own `ip` is spelt ipv4 | ipv6)')
  t.match(doc.info, { license: { name: 'Apache-2.0' } })
})

t.test('decision examples gain policyRevision when the answer schema has it', async t => {
  const doc = documentOpenApi({
    openapi: '3.1.0',
    paths: { '/decide': { post: { responses: { 200: { description: 'x', content: { 'application/json': { schema: { type: 'object', properties: { decisionId: { type: 'string' }, policyRevision: { type: 'string' } } } } } } } } } }
  } as object) as { paths: Record<string, { post: { responses: Record<string, { content: { 'application/json': { examples: Record<string, { value: Json }> } } }> } }> }
  const examples = doc.paths['/decide']!.post.responses['200']!.content['application/json'].examples
  t.ok(Object.keys(examples).length >= 4)
  for (const [name, { value }] of Object.entries(examples)) {
    t.match(value.policyRevision, /^sha256:[0-9a-f]{16}$/, name)
    t.same(Object.keys(value).slice(0, 3), ['decision', 'decisionId', 'policyRevision'], `${name}: right after decisionId`)
  }
})

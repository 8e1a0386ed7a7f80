import { readFile } from 'node:fs/promises'
import t from 'tap'
import { OPENAPI_PATH, POLICY_SCHEMA_PATH, renderOpenApi, renderPolicySchema } from '../../scripts/generated.js'

t.test('the committed OpenAPI document matches the route schemas (run `npm run generate`)', async t => {
  t.equal(await readFile(OPENAPI_PATH, 'utf8'), await renderOpenApi())
})

t.test('the published policy JSON Schema matches the one the loader uses (run `npm run generate`)', async t => {
  t.equal(await readFile(POLICY_SCHEMA_PATH, 'utf8'), renderPolicySchema())
})

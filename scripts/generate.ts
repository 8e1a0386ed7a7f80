import { writeFile } from 'node:fs/promises'
import { OPENAPI_PATH, POLICY_SCHEMA_PATH, renderOpenApi, renderPolicySchema } from './generated.js'

await writeFile(OPENAPI_PATH, await renderOpenApi())
await writeFile(POLICY_SCHEMA_PATH, renderPolicySchema())
console.log(`wrote ${OPENAPI_PATH} and ${POLICY_SCHEMA_PATH}`)

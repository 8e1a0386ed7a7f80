/**
 * A stepup-pdp for the gateway benchmark, in its own process: the policy folder and issuer URL
 * come from argv, the port it listens on goes to stdout as `port=<n>`.
 */
import { pino } from 'pino'
import { buildApp } from '../src/app.js'
import { loadPolicySet, PolicyHolder } from '../src/policy/load.js'
import { openGeoLookup } from '../src/signals/geo.js'
import { createMemoryHistoryStore } from '../src/signals/memory-history.js'

const dir = process.argv[2]!
const { set } = await loadPolicySet(dir)
const geo = await openGeoLookup({})
const app = await buildApp({ apiKeys: [], adminApiKeys: [] }, {
  policies: new PolicyHolder(set),
  geo,
  history: createMemoryHistoryStore({ maxSubjects: 100_000 }),
  logger: pino({ level: 'silent' }),
  maxEventLoopDelayMs: 0
})
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
console.log(`port=${typeof address === 'object' && address ? address.port : 0}`)
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })

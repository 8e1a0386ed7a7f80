/**
 * The load generator of bench/reload-latency.ts, in its own process so that its work does not
 * share the server's event loop: a paced run against `url`, printed as one JSON line.
 */
import { load, toRequests } from './lib/load.js'
import { generatedActions, generatePolicies, makeMix } from './lib/workload.js'

const [url, rate, seconds, policies] = process.argv.slice(2)
const { actions } = generatePolicies(Number(policies))
const bodies = makeMix({ count: 5000, seed: 7, nowS: Math.floor(Date.now() / 1000), population: 1000, variety: 'mixed', actions: generatedActions(actions) })
const result = await load({ url: url!, requests: toRequests(bodies, '/decide'), connections: 8, seconds: Number(seconds), rate: Number(rate), paced: true })
const { latencies: _latencies, ...summary } = result
console.log(JSON.stringify(summary))

/**
 * PSD2 on a real Redis: the engine's PSD2 case file (test/cases/psd2.test.yaml) with each case's
 * two service instances on two Redis clients of one server, and the races that matter: 50
 * parallel attempts to spend one linked SCA, 50 parallel low-value payments — on a standalone
 * server and on a Redis Cluster.
 */
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { pino } from 'pino'
import { compilePolicies } from '../../src/policy/compile.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { parseDecideRequest } from '../../src/contract/index.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import type { HistoryStore } from '../../src/signals/history.js'
import { createRedisHistoryStore, type RedisHistoryOptions } from '../../src/signals/redis-history.js'
import { createDecisionService } from '../../src/service.js'
import { runSuiteFile } from '../../src/testing/suite.js'
import { readyStore, requireRedis, startRedis, startRedisCluster } from '../helpers/redis.js'

if (!requireRedis(t, { cluster: true })) process.exit(0)

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const openStore = async (options: Omit<RedisHistoryOptions, 'commandTimeoutMs'>): Promise<HistoryStore> =>
  await readyStore(createRedisHistoryStore({ commandTimeoutMs: 2000, ...options }))

const server = await startRedis(t)

t.test('the PSD2 case file passes with two instances on two Redis clients', async t => {
  const results = await runSuiteFile(join(import.meta.dirname, '../cases/psd2.test.yaml'), geo, {
    stores: async () => {
      const keyPrefix = `case-${randomUUID()}:`
      const stores: [HistoryStore, HistoryStore] = [await openStore({ url: server.url, keyPrefix }), await openStore({ url: server.url, keyPrefix })]
      return { stores, close: async () => { await Promise.all(stores.map(s => s.close())) } }
    }
  })
  t.ok(results.length >= 15, `the whole file ran (${results.length} cases)`)
  for (const r of results) t.ok(r.ok, r.name, r.ok ? {} : { failures: r.failures })
})

const { set } = compilePolicies({
  policies: [{
    file: 'psd2.yaml',
    text: [
      'policies:',
      '  - id: payment-sca',
      '    actions: [payments.initiate]',
      '    require: { aal: 2, bind: transaction }',
      '    exemptions: { lowValue: true }'
    ].join('\n')
  }],
  lists: []
})
const NOW_MS = Date.parse('2026-12-01T10:00:00Z')
const transaction = (amount: string): Record<string, unknown> => ({ amount, currency: 'EUR', payee: { name: 'ACME GmbH', iban: 'DE89370400440532013000' } })

/** Five service instances over five clients of one Redis (or Cluster), as replicas behind a balancer. */
async function instances (options: Omit<RedisHistoryOptions, 'commandTimeoutMs'>, t: { teardown: (fn: () => unknown) => void }): Promise<Array<ReturnType<typeof createDecisionService>>> {
  const holder = new PolicyHolder(set!, () => NOW_MS)
  const services = []
  for (let i = 0; i < 5; i++) {
    const history = await openStore(options)
    t.teardown(() => history.close())
    services.push(createDecisionService({ policies: holder, geo, history, logger: pino({ level: 'silent' }), now: () => NOW_MS }))
  }
  return services
}

const races = (name: string, options: () => Promise<Omit<RedisHistoryOptions, 'commandTimeoutMs'>>): void => {
  t.test(`${name}: 50 parallel attempts to spend one linked SCA - exactly one allow`, async t => {
    const services = await instances(await options(), t)
    const body = {
      action: 'payments.initiate',
      claims: {
        sub: `payer-${randomUUID()}`,
        amr: ['pwd', 'otp'],
        auth_time: NOW_MS / 1000 - 20,
        authorization_details: [{ type: 'payment_initiation', instructedAmount: { currency: 'EUR', amount: '420.00' }, creditorName: 'ACME GmbH', creditorAccount: { iban: 'DE89370400440532013000' } }]
      },
      context: { transaction: transaction('420.00') }
    }
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const request = parseDecideRequest(body, set!.assurance)
      request.tokenVerified = true
      return (await services[i % services.length]!.decide(request)).decision
    }))
    t.equal(answers.filter(d => d.decision === 'allow').length, 1, 'one SCA pays one payment once')
    t.ok(answers.filter(d => d.decision !== 'allow').every(d => d.decision === 'step_up' && d.reasons[0]?.unmet?.includes('consumed')), 'the others are told the SCA was spent')
  })

  t.test(`${name}: 50 parallel low-value payments - at most 5 exempted`, async t => {
    const services = await instances(await options(), t)
    const body = { action: 'payments.initiate', claims: { sub: `payer-${randomUUID()}`, amr: ['pwd'], auth_time: NOW_MS / 1000 - 3600 }, context: { transaction: transaction('10.00') } }
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const request = parseDecideRequest(body, set!.assurance)
      return (await services[i % services.length]!.decide(request)).decision
    }))
    const exempted = answers.filter(d => d.decision === 'allow')
    t.equal(exempted.length, 5, 'five consecutive low-value payments, then SCA')
    t.ok(exempted.every(d => d.reasons[0]?.exemption === 'lowValue'), 'each names its exemption')
    t.ok(answers.filter(d => d.decision !== 'allow').every(d => d.decision === 'step_up'), 'the rest step up')
  })
}

races('standalone Redis', async () => ({ url: server.url, keyPrefix: `race-${randomUUID()}:` }))
let cluster: Awaited<ReturnType<typeof startRedisCluster>> | undefined
races('Redis Cluster', async () => ({ clusterNodes: (cluster ??= await startRedisCluster(t)).nodes, keyPrefix: `race-${randomUUID()}:` }))

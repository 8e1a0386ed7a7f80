// What an operator sees: one info line and one count per refused request, standard Node
// metric names, counters at 0 from the start, the geo build date, sub-millisecond latency.
import { Writable } from 'node:stream'
import t from 'tap'
import { pino } from 'pino'
import { openGeoLookup, unavailableGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, decide, postDecide, session } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

/** A logger whose lines the test reads. */
function captureLogs (): { logger: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } })
  return { logger: pino({ level: 'info' }, stream), lines }
}

const metricValue = (body: string, series: string): number | undefined => {
  const line = body.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('every refused request is logged once at info with its code, and counted by code', async t => {
  const { logger, lines } = captureLogs()
  const { app } = await buildTestApp({ geo, logger, apiKeys: ['api-key-0123456789abcdef'] })
  t.teardown(() => app.close())
  const key = { authorization: 'Bearer api-key-0123456789abcdef' }

  t.equal((await postDecide(app, { action: 'x' })).statusCode, 401, 'no key')
  t.equal((await postDecide(app, { action: 'a..b' }, key)).statusCode, 400, 'bad action')
  t.equal((await postDecide(app, { action: 'x', nope: 1 }, key)).statusCode, 400, 'unknown field')
  t.equal((await app.inject({ method: 'POST', url: '/decide', headers: { ...key, 'content-type': 'text/plain' }, payload: 'hi' })).statusCode, 415)
  t.equal((await app.inject({ method: 'GET', url: '/nowhere?subject=alice' })).statusCode, 404)
  await decide(app, { action: 'payments.payout', ...session('u1', ['pwd']) }, key)

  const rejected = lines.filter(l => l.msg === 'request rejected')
  t.same(rejected.map(l => [l.code, l.status]), [['unauthorized', 401], ['invalid_request', 400], ['invalid_request', 400], ['unsupported_media_type', 415], ['not_found', 404]])
  t.ok(rejected.every(l => l.level === 30), 'at info')
  t.ok(rejected.every(l => typeof l.path === 'string' && typeof l.method === 'string'), 'with method and path')

  t.equal(rejected[4]!.path, '/nowhere', 'no query string: it may name a subject')
  t.notMatch(JSON.stringify(rejected), /alice/)

  const body = (await app.inject({ url: '/metrics' })).body
  t.equal(metricValue(body, 'stepup_rejected_requests_total{code="invalid_request",status="400"}'), 2)
  t.equal(metricValue(body, 'stepup_rejected_requests_total{code="unauthorized",status="401"}'), 1)
  t.equal(metricValue(body, 'stepup_rejected_requests_total{code="not_found",status="404"}'), 1)
  t.equal(metricValue(body, 'stepup_rejected_requests_total{code="payload_too_large",status="413"}'), 0, 'present at 0')
  t.equal(lines.filter(l => l.msg === 'request rejected').length, 5, 'a decision and a scrape are no rejections')
})

t.test('a fresh service shows its counters at 0 and Node metrics under their standard names', async t => {
  const { app } = await buildTestApp({ geo })
  t.teardown(() => app.close())
  const body = (await app.inject({ url: '/metrics' })).body
  for (const series of [
    'stepup_decisions_total{decision="allow",event="auth.allowed"}',
    'stepup_decisions_total{decision="step_up",event="auth.step_up_initiated"}',
    'stepup_decisions_total{decision="deny",event="auth.access_denied"}',
    'stepup_history_errors_total{operation="read",kind="timeout"}',
    'stepup_rejected_requests_total{code="invalid_request",status="400"}'
  ]) t.equal(metricValue(body, series), 0, series)
  const reloads = body.split('\n').filter(l => l.startsWith('stepup_policy_reloads_total{'))
  t.ok(reloads.length >= 2 && reloads.every(l => l.endsWith(' 0')), `every reload outcome at 0 (${reloads.join('; ')})`)
  t.match(body, /^process_cpu_seconds_total /m)
  t.match(body, /^process_resident_memory_bytes /m)
  t.match(body, /^nodejs_eventloop_lag_seconds /m)
  t.match(body, /^nodejs_heap_size_used_bytes /m)
  t.notMatch(body, /stepup_process_|stepup_nodejs_/, 'not renamed')
})

t.test('the geo database build date is a metric (0 until a database serves)', async t => {
  const { app } = await buildTestApp({ geo })
  t.teardown(() => app.close())
  const build = metricValue((await app.inject({ url: '/metrics' })).body, 'stepup_geo_database_build_timestamp_seconds')!
  t.equal(build, geo.describe().buildEpoch)
  t.ok(build > Date.parse('2020-01-01') / 1000 && build < Date.now() / 1000, 'a plausible date')

  const { app: none } = await buildTestApp({ geo: unavailableGeoLookup('loading') })
  t.teardown(() => none.close())
  t.equal(metricValue((await none.inject({ url: '/metrics' })).body, 'stepup_geo_database_build_timestamp_seconds'), 0)
})

t.test('decision latency buckets resolve sub-millisecond times', async t => {
  const { app } = await buildTestApp({ geo })
  t.teardown(() => app.close())
  const body = (await app.inject({ url: '/metrics' })).body
  const les = [...body.matchAll(/stepup_decision_duration_seconds_bucket\{le="([^"]+)"\}/g)].map(m => Number(m[1]))
  t.ok(les.filter(le => le < 0.001).length >= 5, `at least five buckets under 1 ms (${les.join(', ')})`)
  t.ok(les.some(le => le <= 0.00001), 'down to 10 µs')
})

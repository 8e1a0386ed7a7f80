/**
 * The embedded history store: one instance only, bounded by per-subject caps, expiry and a
 * cap on the number of subjects (least recently used subjects are dropped first). A subject's
 * payment state (memory-psd2.ts) lives in the same entry, under the same cap.
 */
import type { HistoryUpdate } from '../engine/learning.js'
import type { Location } from '../engine/model.js'
import { CAPS, type HistoryQuery, type HistoryRead, type HistoryStore, type SubjectKey } from './history.js'
import { createMemoryPsd2Store, newPsd2Entry, type Psd2Entry } from './memory-psd2.js'
import { DAY } from '../engine/units.js'

interface Entry {
  devices: Map<string, number>
  countries: Map<string, number>
  resources: Map<string, number>
  lastLocation: (Location & { at: number }) | undefined
  updatedAt: number
  psd2: Psd2Entry | undefined
  /** The value of `moves` when this entry last moved to the recent end of the LRU order. */
  movedAt: number
}

const keyOf = (k: SubjectKey): string =>
  k.tenant === undefined ? `\u0000${k.subject}` : `${k.tenant.length}:${k.tenant}\u0000${k.subject}`

function touch (map: Map<string, number>, value: string, now: number, cap: number): void {
  map.delete(value)
  map.set(value, now)
  while (map.size > cap) map.delete(map.keys().next().value!)
}

function prune (map: Map<string, number>, oldest: number): void {
  for (const [k, at] of map) if (at < oldest) map.delete(k)
}

/** Past this many live once-only marks (and, apart, spent SCA marks), consuming fails (closed) rather than forget one. */
export const MAX_CONSUMED_MARKS = 1_000_000

export function createMemoryHistoryStore (options: { maxSubjects: number, maxConsumedMarks?: number, maxSpentMarks?: number }): HistoryStore {
  const subjects = new Map<string, Entry>()
  // Once-only marks live apart from the subjects: evicting a subject to stay under maxSubjects
  // must not forget that an authentication was used (that would allow a replay). Key: subject
  // key + auth time; value: expiry. Insertion order is close to expiry order (one TTL per set),
  // so expired marks are dropped from the front.
  const consumed = new Map<string, number>()
  const maxMarks = options.maxConsumedMarks ?? MAX_CONSUMED_MARKS
  const dropExpired = (now: number): void => {
    for (const [k, until] of consumed) {
      if (until > now) break
      consumed.delete(k)
    }
  }
  // Approximate LRU: an entry moves to the recent end only when it is not among the most recent
  // quarter already, so a busy subject costs a map lookup, not a delete and re-insert per request.
  let moves = 0
  const settle = Math.max(1, Math.floor(options.maxSubjects / 4))

  const get = (key: SubjectKey): Entry | undefined => {
    const k = keyOf(key)
    const entry = subjects.get(k)
    if (entry && moves - entry.movedAt >= settle) {
      subjects.delete(k)
      subjects.set(k, entry)
      entry.movedAt = ++moves
    }
    return entry
  }

  const getOrCreate = (key: SubjectKey, now: number): Entry => {
    let entry = get(key)
    if (!entry) {
      entry = { devices: new Map(), countries: new Map(), resources: new Map(), lastLocation: undefined, updatedAt: now, psd2: undefined, movedAt: ++moves }
      subjects.set(keyOf(key), entry)
      while (subjects.size > options.maxSubjects) subjects.delete(subjects.keys().next().value!)
    }
    return entry
  }

  const { clear: clearPsd2, ...psd2 } = createMemoryPsd2Store({
    state: (key, now, create) => {
      const entry = create ? getOrCreate(key, now) : get(key)
      if (entry !== undefined && create) entry.psd2 ??= newPsd2Entry()
      return entry?.psd2
    },
    id: keyOf
  }, { maxSpentMarks: options.maxSpentMarks ?? MAX_CONSUMED_MARKS })

  return {
    kind: 'memory',
    psd2,
    async read (key: SubjectKey, query: HistoryQuery, now: number): Promise<HistoryRead> {
      const entry = get(key)
      const out: HistoryRead = {}
      if (query.history) {
        out.snapshot = {
          deviceLastSeen: query.deviceId === undefined ? undefined : entry?.devices.get(query.deviceId),
          countryLastSeen: query.country === undefined ? undefined : entry?.countries.get(query.country),
          resourceLastSeen: query.resource === undefined ? undefined : entry?.resources.get(query.resource),
          lastLocation: entry?.lastLocation,
          hasHistory: entry !== undefined && (entry.devices.size + entry.countries.size + entry.resources.size > 0 || entry.lastLocation !== undefined)
        }
      }
      if (query.authTime !== undefined) {
        const until = consumed.get(`${keyOf(key)}\u0000${query.authTime}`)
        out.consumed = until !== undefined && until > now
      }
      return out
    },

    async record (key: SubjectKey, update: HistoryUpdate, now: number, retentionDays: number): Promise<void> {
      const entry = getOrCreate(key, now)
      const oldest = now - retentionDays * DAY
      if (update.deviceId !== undefined) touch(entry.devices, update.deviceId, now, CAPS.devices)
      if (update.country !== undefined) touch(entry.countries, update.country, now, CAPS.countries)
      if (update.resource !== undefined) touch(entry.resources, update.resource, now, CAPS.resources)
      if (update.location !== undefined) entry.lastLocation = { ...update.location, at: now }
      prune(entry.devices, oldest)
      prune(entry.countries, oldest)
      prune(entry.resources, oldest)
      if (entry.lastLocation && entry.lastLocation.at < oldest) entry.lastLocation = undefined
      entry.updatedAt = now
    },

    async consume (key: SubjectKey, authTime: number, now: number, ttlSeconds: number): Promise<boolean> {
      dropExpired(now)
      const mark = `${keyOf(key)}\u0000${authTime}`
      const until = consumed.get(mark)
      if (until !== undefined && until > now) return false
      if (consumed.size >= maxMarks) throw new Error('history store: too many once-only marks to keep')
      consumed.delete(mark) // re-inserted at the end, in expiry order
      consumed.set(mark, now + ttlSeconds)
      return true
    },

    async ping () { return true },
    async close () { subjects.clear(); consumed.clear(); clearPsd2() }
  }
}

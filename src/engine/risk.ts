/**
 * The risk triggers, computed from facts gathered before the decision. A trigger
 * whose facts could not be gathered fires, and says so (never fail open).
 */
import { distanceKm } from './geo.js'
import type { Assurance, Facts, Location, Trigger, UnknownLocation } from './model.js'
import { conditionNeeds } from './needs.js'
import { DAY, HOUR, MINUTE } from './units.js'

export interface TriggerResult {
  fired: boolean
  detail?: string
  figures?: Record<string, unknown>
}

const NOT_FIRED: TriggerResult = { fired: false }

export const DEFAULTS = {
  newDevice: { days: 30 },
  newCountry: { days: 14 },
  impossibleTravel: { maxSpeedKmh: 900, minDistanceKm: 100, maxAccuracyKm: 200 },
  firstAccess: { days: 30 }
} as const

const iso = (seconds: number | undefined): string | null =>
  seconds === undefined ? null : new Date(seconds * 1000).toISOString()

const place = (l: Location): string =>
  [l.city, l.country].filter(Boolean).join(', ') || `${l.latitude.toFixed(2)}, ${l.longitude.toFixed(2)}`

const placeFigures = (l: Location): Record<string, unknown> => ({
  country: l.country ?? null, city: l.city ?? null, latitude: l.latitude, longitude: l.longitude, accuracyKm: l.accuracyKm
})

const elapsedText = (s: number): string =>
  s < 2 * MINUTE ? `${s} s` : s < 2 * HOUR ? `${Math.round(s / MINUTE)} min` : s < 2 * DAY ? `${Math.round(s / HOUR)} h` : `${Math.round(s / DAY)} days`

/** 10849 -> "10,849" (what toLocaleString('en-US') gives, without the Intl machinery). */
const km = (n: number): string => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')

/** Not seen within the last `days` days (or never). */
export const isStale = (lastSeen: number | undefined, days: number, now: number): boolean =>
  lastSeen === undefined || now - lastSeen > days * DAY

export interface Travel { distanceKm: number, elapsedSeconds: number, speedKmh: number, from: Location, to: Location }

/** Computes risk triggers against one request's facts; results are memoised per parameter set. */
export class RiskEvaluator {
  /** Results by trigger and parameters; most requests evaluate one or two triggers. */
  private memo: Map<string, TriggerResult> | undefined

  constructor (private readonly facts: Facts, private readonly assurance: Assurance, private readonly now: number) {}

  private unavailable (): string | undefined {
    const h = this.facts.history
    return h.status === 'unavailable' ? `history unavailable (${h.reason}): fails closed` : undefined
  }

  private geoUnavailable (): string | undefined {
    const g = this.facts.geo
    return g.status === 'unavailable' ? `geo lookup unavailable (${g.reason}): fails closed` : undefined
  }

  /**
   * Why the request has no location, when it has none (an unknown location fails
   * closed). A geo database that is unavailable is a different failure (geoUnavailable).
   */
  private locationUnknown (needCountry: boolean): string | undefined {
    const g = this.facts.geo
    const ip = this.facts.request.ip
    if (g.status === 'none') return ip === undefined ? 'location unknown (the request has no ip): fails closed' : `location unknown (no location for ${ip}): fails closed`
    if (g.status === 'found' && needCountry && !g.location.country) return `location unknown (no country for ${ip ?? 'the address'}): fails closed`
    return undefined
  }

  private snapshot (): NonNullable<Extract<Facts['history'], { status: 'found' }>['snapshot']> | undefined {
    return this.facts.history.status === 'found' ? this.facts.history.snapshot : undefined
  }

  newDevice (days: number): TriggerResult {
    return this.cached(`nd:${days}`, () => {
      const down = this.unavailable()
      if (down) return { fired: true, detail: down }
      const device = this.facts.request.deviceId
      if (device === undefined) return { fired: true, detail: 'no device fingerprint: counts as a new device', figures: { device: null, lastSeen: null } }
      const lastSeen = this.snapshot()?.deviceLastSeen
      if (!isStale(lastSeen, days, this.now)) return NOT_FIRED
      return {
        fired: true,
        detail: lastSeen === undefined ? 'device never seen for this user' : `device last seen ${iso(lastSeen)} (over ${days} days ago)`,
        figures: { device, lastSeen: iso(lastSeen) }
      }
    })
  }

  newCountry (days: number, unknownLocation: UnknownLocation = 'fire'): TriggerResult {
    return this.cached(`nc:${days}:${unknownLocation}`, () => {
      const geoDown = this.geoUnavailable()
      if (geoDown) return { fired: true, detail: geoDown }
      const unknown = this.locationUnknown(true)
      if (unknown) return unknownLocation === 'ignore' ? NOT_FIRED : { fired: true, detail: unknown }
      if (this.facts.geo.status !== 'found' || !this.facts.geo.location.country) return NOT_FIRED
      const down = this.unavailable()
      if (down) return { fired: true, detail: down }
      const country = this.facts.geo.location.country
      const lastSeen = this.snapshot()?.countryLastSeen
      if (!isStale(lastSeen, days, this.now)) return NOT_FIRED
      return {
        fired: true,
        detail: lastSeen === undefined ? `country ${country} never seen for this user` : `country ${country} last seen ${iso(lastSeen)} (over ${days} days ago)`,
        figures: { country, lastSeen: iso(lastSeen) }
      }
    })
  }

  private travelMemo: Travel | undefined | null = null

  /** Travel from the last allowed location, when both ends are known. */
  travel (): Travel | undefined {
    if (this.travelMemo === null) this.travelMemo = this.computeTravel()
    return this.travelMemo
  }

  private computeTravel (): Travel | undefined {
    if (this.facts.geo.status !== 'found') return undefined
    const last = this.snapshot()?.lastLocation
    if (!last) return undefined
    const to = this.facts.geo.location
    const distance = distanceKm(last, to)
    // A previous time in the future (clock skew, forged history) must not hide travel.
    const elapsed = Math.max(1, Math.round(this.now - last.at))
    const effective = Math.max(0, distance - last.accuracyKm - to.accuracyKm)
    return { distanceKm: distance, elapsedSeconds: elapsed, speedKmh: effective / (elapsed / HOUR), from: last, to }
  }

  impossibleTravel (maxSpeedKmh: number, minDistanceKm: number, maxAccuracyKm: number, unknownLocation: UnknownLocation = 'fire'): TriggerResult {
    return this.cached(`it:${maxSpeedKmh}:${minDistanceKm}:${maxAccuracyKm}:${unknownLocation}`, () => {
      const geoDown = this.geoUnavailable()
      if (geoDown) return { fired: true, detail: geoDown }
      const unknown = this.locationUnknown(false)
      if (unknown) return unknownLocation === 'ignore' ? NOT_FIRED : { fired: true, detail: unknown }
      if (this.facts.geo.status !== 'found') return NOT_FIRED
      const down = this.unavailable()
      if (down) return { fired: true, detail: down }
      const t = this.travel()
      if (!t) return NOT_FIRED
      if (t.distanceKm < minDistanceKm) return NOT_FIRED
      if (t.from.accuracyKm > maxAccuracyKm || t.to.accuracyKm > maxAccuracyKm) return NOT_FIRED
      if (t.speedKmh <= maxSpeedKmh) return NOT_FIRED
      return {
        fired: true,
        detail: `${place(t.from)} -> ${place(t.to)}: ${km(t.distanceKm)} km in ${elapsedText(t.elapsedSeconds)}`,
        figures: {
          from: placeFigures(t.from),
          to: placeFigures(t.to),
          distanceKm: Math.round(t.distanceKm),
          elapsedSeconds: t.elapsedSeconds,
          speedKmh: Math.round(t.speedKmh)
        }
      }
    })
  }

  ipList (lists: string[]): TriggerResult {
    const hits = this.facts.ipLists.filter(l => lists.includes(l))
    return hits.length > 0 ? { fired: true, detail: `${this.facts.request.ip ?? ''} is in ${hits.join(', ')}`, figures: { lists: hits } } : NOT_FIRED
  }

  firstAccess (resource: string, days: number): TriggerResult {
    if (this.facts.request.resource !== resource) return NOT_FIRED
    const down = this.unavailable()
    if (down) return { fired: true, detail: down }
    const lastSeen = this.snapshot()?.resourceLastSeen
    if (!isStale(lastSeen, days, this.now)) return NOT_FIRED
    return {
      fired: true,
      detail: lastSeen === undefined ? `first access to ${resource}` : `no access to ${resource} since ${iso(lastSeen)}`,
      figures: { resource, lastSeen: iso(lastSeen) }
    }
  }

  /**
   * The larger of the caller's score and 1 - Π(1 - wᵢ) over the default-parameter signals that
   * fired. An unknown location fires no location signal here (nor in CEL): only the
   * newCountry / impossibleTravel triggers fail closed on it, each with its own opt-out, and
   * conditions read `signals.locationKnown`. Counted here, a request without an ip would score
   * 0.72 from the two signals standing for one missing fact.
   */
  riskScore (): { score: number, failed: string | undefined, signals: string[] } {
    const w = this.assurance.riskWeights
    const d = DEFAULTS
    const parts: Array<[string, number, TriggerResult]> = [
      ['newDevice', w.newDevice, this.newDevice(d.newDevice.days)],
      ['newCountry', w.newCountry, this.newCountry(d.newCountry.days, 'ignore')],
      ['impossibleTravel', w.impossibleTravel, this.impossibleTravel(d.impossibleTravel.maxSpeedKmh, d.impossibleTravel.minDistanceKm, d.impossibleTravel.maxAccuracyKm, 'ignore')]
    ]
    let keep = 1
    const fired: string[] = []
    for (const [name, weight, result] of parts) {
      if (result.fired) { keep *= 1 - weight; fired.push(name) }
    }
    for (const list of this.facts.ipLists) { keep *= 1 - w.ipList; fired.push(`ipList:${list}`) }
    const caller = this.facts.request.context.riskScore
    const score = Math.max(typeof caller === 'number' ? caller : 0, 1 - keep)
    const failed = this.unavailable() ?? this.geoUnavailable()
    return { score: Math.round(score * 1e6) / 1e6, failed, signals: fired }
  }

  riskScoreTrigger (atLeast: number): TriggerResult {
    const r = this.riskScore()
    if (r.failed) return { fired: true, detail: r.failed, figures: { score: r.score, signals: r.signals } }
    if (r.score < atLeast) return NOT_FIRED
    return { fired: true, detail: `risk score ${r.score} >= ${atLeast}`, figures: { score: r.score, signals: r.signals } }
  }

  /**
   * The `signals` variable of CEL conditions, with every trigger at its default parameters; an
   * unknown location is `locationKnown: false`, not a new country or impossible travel.
   */
  celSignals (): Record<string, unknown> {
    const d = DEFAULTS
    const travel = this.travel()
    const signals: Record<string, unknown> = {
      newDevice: this.newDevice(d.newDevice.days).fired,
      newCountry: this.newCountry(d.newCountry.days, 'ignore').fired,
      impossibleTravel: this.impossibleTravel(d.impossibleTravel.maxSpeedKmh, d.impossibleTravel.minDistanceKm, d.impossibleTravel.maxAccuracyKm, 'ignore').fired,
      hasHistory: this.snapshot()?.hasHistory ?? false,
      locationKnown: this.facts.geo.status === 'found',
      ipLists: this.facts.ipLists,
      riskScore: this.riskScore().score
    }
    if (travel) {
      signals.travel = { distanceKm: Math.round(travel.distanceKm), elapsedSeconds: travel.elapsedSeconds, speedKmh: Math.round(travel.speedKmh) }
    }
    return signals
  }

  evaluate (trigger: Exclude<Trigger, { kind: 'always' } | { kind: 'condition' }>): TriggerResult {
    switch (trigger.kind) {
      case 'newDevice': return this.newDevice(trigger.days)
      case 'newCountry': return this.newCountry(trigger.days, trigger.unknownLocation)
      case 'impossibleTravel': return this.impossibleTravel(trigger.maxSpeedKmh, trigger.minDistanceKm, trigger.maxAccuracyKm, trigger.unknownLocation)
      case 'riskScore': return this.riskScoreTrigger(trigger.atLeast)
      case 'ipList': return this.ipList(trigger.lists)
      case 'firstAccess': return this.firstAccess(trigger.resource, trigger.days)
    }
  }

  /** Why a condition reading `reads` cannot be evaluated, if a fact it needs is unavailable. */
  failureFor (reads: ReadonlySet<string>): string | undefined {
    const needs = conditionNeeds(reads)
    if (needs.history && this.unavailable()) return this.unavailable()
    if (needs.geo && this.geoUnavailable()) return this.geoUnavailable()
    return undefined
  }

  private cached (key: string, compute: () => TriggerResult): TriggerResult {
    this.memo ??= new Map()
    let r = this.memo.get(key)
    if (!r) { r = compute(); this.memo.set(key, r) }
    return r
  }
}

/**
 * What a request may teach history. A new fact is learnt only from an `allow` whose
 * session meets the learning floor and the strictest requirement among the tenant's enforced
 * step-up policies that use that signal and for which the fact is new. The per-tenant tables
 * are built when policies compile, so the hot path only compares numbers.
 */
import { isWithin, provesOneOf, type Session } from './assurance.js'
import type { Aal, Assurance, Facts, HistorySnapshot, Location, Policy, Trigger } from './model.js'
import { readsSignal } from './needs.js'
import { DEFAULTS, isStale, type RiskEvaluator } from './risk.js'
import { DAY, HOUR } from './units.js'

/**
 * What a session must meet to teach a fact some policies use: their highest AAL, smallest
 * maxAge, and for each policy that restricts factors, one of its factors (else a
 * phished password + OTP session teaches what a phishing-resistant step-up guards).
 */
interface User { aal: Aal, maxAge: number, factors: ReadonlyArray<readonly string[]> }
interface WindowUser extends User { days: number }
interface TravelUser extends User { maxSpeedKmh: number, minDistanceKm: number, maxAccuracyKm: number }

/**
 * The policies that use a windowed signal (device, country, resource), compressed: sorted by
 * `days`, with the strictest requirement of every prefix. A fact last seen `age` ago is new for
 * exactly the policies whose `days` is shorter than `age` — a prefix — so the requirement it
 * must meet is one bisection away, whatever the number of policies.
 */
export interface WindowTable { days: number[], strictest: User[] }

export interface LearningRules {
  device: WindowTable
  country: WindowTable
  /** One entry per distinct set of travel parameters, with its strictest requirement. */
  location: TravelUser[]
  /**
   * The strictest requirement among policies reading `signals.hasHistory`: a subject with no
   * history learns nothing at all (not even a first location) from a weaker session, or the
   * first write would switch such a policy off.
   */
  firstFact: User | undefined
  resources: Map<string, WindowTable>
}

export interface Learning {
  forTenant: (tenant: string | undefined) => LearningRules
  /** The longest look-back in use, in days (history keeps entries that long, at most 400). */
  retentionDays: number
}

/** The facts a decision may write; absent members are not written. */
export interface HistoryUpdate {
  deviceId?: string
  country?: string
  location?: Location
  resource?: string
}

const REFRESH_AFTER = HOUR
const EMPTY_TABLE: WindowTable = { days: [], strictest: [] }

type SignalUse = { hasHistory?: boolean, device?: number, country?: number, travel?: Omit<TravelUser, keyof User>, resource?: { name: string, days: number } }

function usesOf (trigger: Trigger): SignalUse[] {
  const d = DEFAULTS
  const all: SignalUse = { device: d.newDevice.days, country: d.newCountry.days, travel: d.impossibleTravel }
  switch (trigger.kind) {
    case 'newDevice': return [{ device: trigger.days }]
    case 'newCountry': return [{ country: trigger.days }]
    case 'impossibleTravel': return [{ travel: { maxSpeedKmh: trigger.maxSpeedKmh, minDistanceKm: trigger.minDistanceKm, maxAccuracyKm: trigger.maxAccuracyKm } }]
    case 'firstAccess': return [{ resource: { name: trigger.resource, days: trigger.days } }]
    case 'riskScore': return [all]
    case 'condition': {
      const sig = readsSignal(trigger.program.reads)
      if (sig('riskScore')) return [all]
      const use: SignalUse = {}
      if (sig('hasHistory')) use.hasHistory = true
      if (sig('newDevice') || sig('hasHistory')) use.device = d.newDevice.days
      if (sig('newCountry') || sig('hasHistory')) use.country = d.newCountry.days
      if (sig('impossibleTravel') || sig('travel')) use.travel = d.impossibleTravel
      return [use]
    }
    default: return []
  }
}

const sameFactors = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((f, i) => f === b[i])

const stricter = (a: User, b: User): User => ({
  aal: a.aal >= b.aal ? a.aal : b.aal,
  maxAge: Math.min(a.maxAge, b.maxAge),
  factors: [...a.factors, ...b.factors.filter(f => !a.factors.some(g => sameFactors(f, g)))]
})

function windowTable (users: WindowUser[]): WindowTable {
  const sorted = [...users].sort((a, b) => a.days - b.days)
  const table: WindowTable = { days: [], strictest: [] }
  let acc: User | undefined
  for (const u of sorted) {
    acc = acc === undefined ? { aal: u.aal, maxAge: u.maxAge, factors: u.factors } : stricter(acc, u)
    table.days.push(u.days)
    table.strictest.push(acc)
  }
  return table
}

function travelTable (users: TravelUser[]): TravelUser[] {
  const byParams = new Map<string, TravelUser>()
  for (const u of users) {
    const key = `${u.maxSpeedKmh}:${u.minDistanceKm}:${u.maxAccuracyKm}`
    const seen = byParams.get(key)
    byParams.set(key, seen === undefined ? { ...u } : { ...seen, ...stricter(seen, u) })
  }
  return [...byParams.values()]
}

function buildRules (policies: readonly Policy[]): LearningRules {
  const device: WindowUser[] = []
  const country: WindowUser[] = []
  const location: TravelUser[] = []
  const resources = new Map<string, WindowUser[]>()
  let firstFact: User | undefined
  for (const p of policies) {
    const req: User = { aal: p.require.aal, maxAge: p.require.maxAge, factors: p.require.factors === null ? [] : [p.require.factors] }
    for (const use of p.triggers.flatMap(usesOf)) {
      if (use.hasHistory === true) firstFact = firstFact === undefined ? req : stricter(firstFact, req)
      if (use.device !== undefined) device.push({ ...req, days: use.device })
      if (use.country !== undefined) country.push({ ...req, days: use.country })
      if (use.travel !== undefined) location.push({ ...req, ...use.travel })
      if (use.resource !== undefined) {
        const list = resources.get(use.resource.name) ?? []
        list.push({ ...req, days: use.resource.days })
        resources.set(use.resource.name, list)
      }
    }
  }
  return {
    device: windowTable(device),
    country: windowTable(country),
    location: travelTable(location),
    firstFact,
    resources: new Map([...resources].map(([name, users]) => [name, windowTable(users)]))
  }
}

export function buildLearning (policies: readonly Policy[], _assurance: Assurance): Learning {
  const relevant = policies.filter(p => p.mode === 'enforce' && p.effect === 'step_up')
  // A tenant's policies are the global ones (and application-scoped ones, which can apply to
  // any tenant) plus its own.
  const shared = relevant.filter(p => p.scope.tenant === undefined)
  const byTenant = new Map<string, Policy[]>()
  for (const p of relevant) {
    if (p.scope.tenant === undefined) continue
    const list = byTenant.get(p.scope.tenant) ?? []
    list.push(p)
    byTenant.set(p.scope.tenant, list)
  }
  const tables = new Map([...byTenant].map(([t, own]) => [t, buildRules([...shared, ...own])]))
  const sharedRules = buildRules(shared)
  const windows = relevant.flatMap(p => p.triggers.flatMap(usesOf))
    .flatMap(u => [u.device, u.country, u.resource?.days, u.travel ? DEFAULTS.newDevice.days : undefined])
    .filter((n): n is number => n !== undefined)
  return {
    forTenant: tenant => (tenant !== undefined ? tables.get(tenant) : undefined) ?? sharedRules,
    retentionDays: Math.min(400, windows.reduce((a, b) => Math.max(a, b), 30))
  }
}

/** How many policies of `table` the fact is new for (a prefix, by bisection). */
function newForCount (table: WindowTable, lastSeen: number | undefined, now: number): number {
  if (lastSeen === undefined) return table.days.length
  const ageDays = (now - lastSeen) / DAY
  let lo = 0
  let hi = table.days.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (table.days[mid]! < ageDays) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Does the session meet the floor and every requirement in `users` (strictest wins, factors included)? */
function strongEnough (session: Session, users: User[], assurance: Assurance): boolean {
  const floor = assurance.learnFrom
  let aal = floor.aal
  let maxAge = floor.maxAge
  for (const u of users) {
    if (u.aal > aal) aal = u.aal
    if (u.maxAge < maxAge) maxAge = u.maxAge
    for (const allowed of u.factors) if (!provesOneOf(session, allowed)) return false
  }
  // maxAge 0 counts as the clock skew here, without consuming the authentication.
  return session.aal >= aal && isWithin(session, maxAge, assurance.clockSkew)
}

const needsRefresh = (lastSeen: number | undefined, now: number): boolean =>
  lastSeen === undefined || now - lastSeen >= REFRESH_AFTER

/** What deciding whether a fact may be learned reads: the subject's history, the rules, the session and the clock. */
export interface LearningContext {
  snapshot: HistorySnapshot
  rules: LearningRules
  session: Session
  risk: RiskEvaluator
  assurance: Assurance
  now: number
}

/**
 * The writes an allowed decision makes. New facts need a strong, recent session; known
 * facts are refreshed, at most hourly, by any allowed request.
 */
export function learnFrom (facts: Facts, context: LearningContext): HistoryUpdate {
  const { snapshot, rules, session, assurance, now } = context
  const update: HistoryUpdate = {}
  if (!snapshot.hasHistory && rules.firstFact !== undefined && !strongEnough(session, [rules.firstFact], assurance)) return update
  const learnWindowed = (lastSeen: number | undefined, table: WindowTable, defaultDays: number): boolean => {
    if (table.days.length === 0) {
      return isStale(lastSeen, defaultDays, now) ? strongEnough(session, [], assurance) : needsRefresh(lastSeen, now)
    }
    const count = newForCount(table, lastSeen, now)
    if (count > 0) return strongEnough(session, [table.strictest[count - 1]!], assurance)
    return needsRefresh(lastSeen, now)
  }

  const deviceId = facts.request.deviceId
  if (deviceId !== undefined && learnWindowed(snapshot.deviceLastSeen, rules.device, DEFAULTS.newDevice.days)) {
    update.deviceId = deviceId
  }
  const resource = facts.request.resource
  if (resource !== undefined && learnWindowed(snapshot.resourceLastSeen, rules.resources.get(resource) ?? EMPTY_TABLE, DEFAULTS.firstAccess.days)) {
    update.resource = resource
  }
  if (facts.geo.status === 'found') {
    const location = facts.geo.location
    if (location.country !== undefined && learnWindowed(snapshot.countryLastSeen, rules.country, DEFAULTS.newCountry.days)) {
      update.country = location.country
    }
    if (learnLocation(location, context)) update.location = location
  }
  return update
}

/**
 * A location is a new fact when the move to it is impossible travel, or cannot be judged (either
 * end's accuracy radius over maxAccuracyKm): then it needs the session the travel policies
 * need. The first location, a judged possible move and a refresh are not new facts. An
 * imprecise location never replaces a precise one from a session below the floor, or a coarse
 * address (a country centroid) would hide the next jump.
 */
function learnLocation (location: Location, { snapshot, rules, session, risk, assurance, now }: LearningContext): boolean {
  const last = snapshot.lastLocation
  if (!last) return true // the first location is not a new fact
  const d = DEFAULTS.impossibleTravel
  const users: TravelUser[] = rules.location.length > 0
    ? rules.location
    : [{ aal: assurance.learnFrom.aal, maxAge: assurance.learnFrom.maxAge, factors: [], maxSpeedKmh: d.maxSpeedKmh, minDistanceKm: d.minDistanceKm, maxAccuracyKm: d.maxAccuracyKm }]
  const moved = last.latitude !== location.latitude || last.longitude !== location.longitude
  const unjudgeable = (u: TravelUser): boolean => moved && (last.accuracyKm > u.maxAccuracyKm || location.accuracyKm > u.maxAccuracyKm)
  const newFor = users.filter(u => unjudgeable(u) || risk.impossibleTravel(u.maxSpeedKmh, u.minDistanceKm, u.maxAccuracyKm).fired)
  if (newFor.length > 0) return strongEnough(session, rules.location.length > 0 ? newFor : [], assurance)
  const precision = Math.min(...users.map(u => u.maxAccuracyKm))
  if (location.accuracyKm > precision && last.accuracyKm <= precision && !strongEnough(session, [], assurance)) return false
  return moved || needsRefresh(last.at, now)
}

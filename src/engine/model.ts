/**
 * The compiled shapes the engine works on, and the facts it is given. The engine never sees
 * YAML, files, Redis or the clock: only these.
 */

export type Aal = 0 | 1 | 2 | 3
export type Effect = 'step_up' | 'deny'
export type Mode = 'enforce' | 'report'

export interface FactorClass {
  name: string
  amr: string[]
  maxAal: 1 | 2 | 3
  phishingResistant: boolean
}

export interface Assurance {
  /** acr value -> AAL. Unknown values count for nothing. */
  acr: ReadonlyMap<string, Aal>
  /** Strongest first: highest AAL, then phishing-resistant, then declaration order. */
  factors: readonly FactorClass[]
  factorByName: ReadonlyMap<string, FactorClass>
  amrToFactor: ReadonlyMap<string, FactorClass>
  userVerification: ReadonlySet<string>
  clockSkew: number
  challengeAcr: { aal1: string[], aal2: string[], aal2PhishingResistant: string[], aal3: string[] }
  learnFrom: { aal: Aal, maxAge: number }
  riskWeights: { newDevice: number, newCountry: number, impossibleTravel: number, ipList: number }
}

/** What a condition reads, so the service fetches only the signals someone needs. */
export interface SignalNeeds {
  history: boolean
  geo: boolean
  ipLists: boolean
}

export interface ConditionProgram {
  source: string
  /** Evaluates against the CEL variables; run-time errors and non-boolean results come back as `error`. */
  evaluate: (vars: Record<string, unknown>) => { value: boolean } | { error: string }
  /** Top-level variables and `signals.*` members the expression reads. */
  reads: ReadonlySet<string>
  /**
   * `context.*` paths the expression reads without a guard (`has(context.x)` or `'x' in context`
   * anywhere in it): when the caller omits the field, the condition errors and fails closed.
   */
  unguardedContext: readonly string[]
}

export type Trigger =
  | { kind: 'always' }
  | { kind: 'condition', program: ConditionProgram }
  | { kind: 'newDevice', days: number }
  | { kind: 'newCountry', days: number }
  | { kind: 'impossibleTravel', maxSpeedKmh: number, minDistanceKm: number, maxAccuracyKm: number }
  | { kind: 'riskScore', atLeast: number }
  | { kind: 'ipList', lists: string[] }
  | { kind: 'firstAccess', resource: string, days: number }

export type TriggerKind = Trigger['kind']

export interface Requirement {
  aal: 1 | 2 | 3
  /** Allowed factor classes; null = every class that reaches the AAL. */
  factors: string[] | null
  /** Seconds; 0 = once-only. */
  maxAge: number
}

export interface Policy {
  id: string
  description: string | undefined
  file: string
  line: number
  scope: { tenant?: string, application?: string }
  /** 0 global, 1 tenant, 2 application, 3 tenant + application. */
  specificity: 0 | 1 | 2 | 3
  overrides: string | undefined
  actions: string[]
  triggers: Trigger[]
  effect: Effect
  require: Requirement
  message: string | undefined
  mode: Mode
  needs: SignalNeeds
}

export interface Location {
  latitude: number
  longitude: number
  accuracyKm: number
  country?: string
  city?: string
}

/** The geo facts of the request's IP. */
export type GeoFact =
  | { status: 'none' } // no ip, or a private/unknown address
  | { status: 'unavailable', reason: string }
  | { status: 'found', location: Location }

/** What the history store knows about this subject, read before the decision. */
export interface HistorySnapshot {
  /** Last seen (epoch seconds) of this request's device, if ever. */
  deviceLastSeen: number | undefined
  /** Last seen of this request's country, if ever. */
  countryLastSeen: number | undefined
  /** Last seen of this request's resource, if ever. */
  resourceLastSeen: number | undefined
  lastLocation: (Location & { at: number }) | undefined
  /** Whether anything at all is known about the subject. */
  hasHistory: boolean
}

export type HistoryFact =
  | { status: 'skipped' }
  | { status: 'unavailable', reason: string }
  | { status: 'found', snapshot: HistorySnapshot }

export type OnceOnlyFact =
  | { status: 'skipped' }
  | { status: 'unavailable', reason: string }
  | { status: 'found', consumed: boolean }

/** The normalized request: validated and with the subject resolved. */
export interface DecisionRequest {
  action: string
  tenant: string | undefined
  application: string | undefined
  subjectId: string
  enrolledFactors: string[] | undefined
  claims: Record<string, unknown>
  ip: string | undefined
  /** A hash of `device.fingerprint`: the clear value never enters the engine, logs or history. */
  deviceId: string | undefined
  resource: string | undefined
  context: Record<string, unknown>
}

export interface Facts {
  request: DecisionRequest
  geo: GeoFact
  history: HistoryFact
  /** Names of the IP lists the address is in. */
  ipLists: string[]
  onceOnly: OnceOnlyFact
}

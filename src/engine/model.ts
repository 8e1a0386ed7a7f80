/**
 * The compiled shapes the engine works on, and the facts it is given. The engine never sees
 * YAML, files, Redis or the clock: only these.
 */

export type Aal = 0 | 1 | 2 | 3
export type Effect = 'step_up' | 'deny'
export type Mode = 'enforce' | 'report'

/** NIST SP 800-63B factor categories: something you know, have, are. */
export type FactorCategory = 'know' | 'have' | 'are'

export interface FactorClass {
  name: string
  category: FactorCategory
  amr: string[]
  maxAal: 1 | 2 | 3
  phishingResistant: boolean
  /** A `have` class that verifies the user itself (a passkey): multi-factor on its own. */
  multiFactor: boolean
}

/** What an acr value means: the AAL it stands for and the factor classes it proves (one of them was used). */
export interface AcrMeaning {
  aal: Aal
  proves: readonly string[]
}

/** A step-up claim without auth_time (`su: true`): counts as an authentication `maxAge` seconds old. */
export interface StepUpClaim {
  claim: string
  maxAge: number
}

/** What the token's issuer declares, set by the token verifier (raw claims leave it undefined). */
export interface IssuerAssurance {
  /** Merged over `assurance.acr`. */
  acr?: Record<string, { aal: Aal, proves?: string[] }>
  stepUpClaim?: StepUpClaim
}

export interface Assurance {
  /** acr value -> meaning. Unknown values count for nothing. */
  acr: ReadonlyMap<string, AcrMeaning>
  /** Strongest first: highest AAL, then phishing-resistant, then declaration order. */
  factors: readonly FactorClass[]
  factorByName: ReadonlyMap<string, FactorClass>
  amrToFactor: ReadonlyMap<string, FactorClass>
  /** amr values that verify the user (know or are) without being a factor class: a PIN, a biometric. */
  userVerification: ReadonlySet<string>
  /** The step-up claim honoured when the request names no issuer; undefined = none. */
  stepUpClaim: StepUpClaim | undefined
  clockSkew: number
  challengeAcr: { aal1: string[], aal2: string[], aal2PhishingResistant: string[], aal3: string[] }
  learnFrom: { aal: Aal, maxAge: number }
  riskWeights: { newDevice: number, newCountry: number, impossibleTravel: number, ipList: number }
  /** What decision records keep: `context` keys listed here are dropped. */
  audit: { redactContext: readonly string[] }
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
  | { kind: 'newCountry', days: number, unknownLocation: UnknownLocation }
  | { kind: 'impossibleTravel', maxSpeedKmh: number, minDistanceKm: number, maxAccuracyKm: number, unknownLocation: UnknownLocation }
  | { kind: 'riskScore', atLeast: number }
  | { kind: 'ipList', lists: string[] }
  | { kind: 'firstAccess', resource: string, days: number }

export type TriggerKind = Trigger['kind']

/** What a location trigger does when the request has no location: fire (fail closed, the default) or skip. */
export type UnknownLocation = 'fire' | 'ignore'

export interface Requirement {
  aal: 1 | 2 | 3
  /** Allowed factor classes; null = every class that reaches the AAL. */
  factors: string[] | null
  /** Seconds; 0 = once-only. */
  maxAge: number
  /** OAuth scopes the token must hold, every one of them (empty = none). */
  scopes: readonly string[]
}

/** PSD2 exemptions from strong customer authentication (amounts in EUR cents). */
export interface Exemptions {
  /** Low-value payments: at most `maxAmount` each, while fewer than `maxCount` payments and at most `maxTotal` were exempted since the last SCA. */
  lowValue?: { maxAmount: number, maxCount: number, maxTotal: number }
  /** Payees the subject trusted in an SCA-authenticated payment. */
  trustedBeneficiary: boolean
  /** Transaction risk analysis: at most `maxAmount`, and `context.riskScore` below `riskScoreBelow`. */
  tra?: { maxAmount: number, riskScoreBelow: number }
  /** EUR value of one unit of another currency; a currency not listed gets no exemption. */
  conversion: Readonly<Record<string, number>>
}

export type ExemptionKind = 'lowValue' | 'trustedBeneficiary' | 'tra'

/** Failed step-ups that lock a subject out of step-ups: `attempts` within `window` seconds. */
export interface Lockout {
  attempts: number
  window: number
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
  /** `require.bind: transaction`: only a verified token whose authorization_details name this payment satisfies it, once. */
  bind?: 'transaction'
  exemptions?: Exemptions
  lockout?: Lockout
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

/** `context.transaction`, validated and normalized (docs/psd2.md). */
export interface Transaction {
  /** The decimal string as the caller sent it. */
  amount: string
  /** The amount in units of 1/10,000 of the currency (exact). */
  scaled: number
  currency: string
  payee: { name: string, iban: string }
  /** Add the payee to the trusted beneficiaries when this payment is SCA-authenticated. */
  trustPayee: boolean
  /** Digest of amount (canonical), currency, payee name and IBAN: what one SCA pays. */
  hash: string
  /** Digest of the IBAN salted with tenant and subject: how the trusted list names the payee. */
  payeeId: string
}

/** What the history store knows for PSD2 (docs/psd2.md). */
export interface Psd2Facts {
  /** The linked SCA (auth_time, transaction) was already spent; undefined when not asked or not known. */
  linkedConsumed?: boolean
  /** Set instead of `linkedConsumed` when the store cannot tell (it lost its data recently): why. */
  linkedUnavailable?: string
  trustedPayee?: boolean
  /** Payments exempted since the last SCA (EUR cents). */
  exempted: { count: number, cents: number }
  /** Failed step-ups within the widest lockout window, epoch seconds ascending. */
  failures: number[]
}

export type Psd2Fact =
  | { status: 'skipped' }
  | { status: 'unavailable', reason: string }
  | { status: 'found', state: Psd2Facts }

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
  /** `context.transaction`, normalized; undefined when the request names none. */
  transaction?: Transaction
  /** The claims come from a token the service verified (not from the caller). */
  tokenVerified?: boolean
  /** What the token's issuer declares (acr meanings, step-up claim); set by the token verifier only. */
  issuer?: IssuerAssurance
  /** The token is DPoP-bound (RFC 9449): challenges use the DPoP scheme. Set by the token verifier. */
  dpopBound?: boolean
}

export interface Facts {
  request: DecisionRequest
  geo: GeoFact
  history: HistoryFact
  /** Names of the IP lists the address is in. */
  ipLists: string[]
  onceOnly: OnceOnlyFact
  /** Absent = skipped (no PSD2 policy applies). */
  psd2?: Psd2Fact
}

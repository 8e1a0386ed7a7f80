/**
 * What the benchmark sends: a realistic mix of /decide bodies (several subjects, devices, IPs
 * from the bundled GeoLite2, actions that hit and miss the example policies, strong and weak
 * sessions), a generated policy folder of any size, and the history of a subject population
 * in exactly the layout src/signals/redis-history.ts writes.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { DecideBody } from '../../src/contract/index.js'
import type { FolderSources } from '../../src/policy/source.js'

/** A small seeded PRNG (mulberry32): the same seed gives the same mix. */
export function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function weighted<T> (r: () => number, table: Array<[number, T]>): T {
  const total = table.reduce((s, [w]) => s + w, 0)
  let x = r() * total
  for (const [w, v] of table) { if ((x -= w) < 0) return v }
  return table[table.length - 1]![1]
}

/** Home addresses (accuracy ≤ 20 km, so impossible travel can fire) by country. */
export const HOME_IPS = [
  { country: 'GB', ip: '62.252.0.1' }, // Bromley
  { country: 'SG', ip: '203.116.0.1' }, // Singapore
  { country: 'US', ip: '128.101.101.101' } // Minneapolis
] as const
/** Addresses a subject travels to (or an attacker uses). */
export const TRAVEL_IPS = ['133.11.0.1', '89.160.20.112', '193.0.6.139', '216.160.83.56'] as const
/** In policies/lists/threats.txt. */
export const THREAT_IP = '198.51.100.7'
export const IPV6 = '2001:4860:4860::8888'

/** Device fingerprints come from a pool of 65,536 (so a million-subject fill hashes 65k, not 5M). */
export const DEVICE_POOL = 65_536
export const deviceFp = (subject: number, k: number): string => `fp-${(subject * 5 + k) % DEVICE_POOL}`
export const subjectId = (i: number): string => `user-${String(i).padStart(7, '0')}`
export const homeOf = (subject: number): (typeof HOME_IPS)[number] => HOME_IPS[subject % 3]!

type Session = 'strong' | 'passkey' | 'hwk' | 'weak' | 'stale'
const SESSIONS: Array<[number, Session]> = [[65, 'strong'], [10, 'passkey'], [5, 'hwk'], [15, 'weak'], [5, 'stale']]

function claimsFor (kind: Session, sub: string, nowS: number): Record<string, unknown> {
  switch (kind) {
    case 'strong': return { sub, amr: ['pwd', 'otp'], auth_time: nowS - 120, iat: nowS - 120, exp: nowS + 3480 }
    case 'passkey': return { sub, amr: ['swk', 'user'], auth_time: nowS - 60, iat: nowS - 60, exp: nowS + 3540 }
    case 'hwk': return { sub, amr: ['hwk', 'pin'], acr: 'phrh', auth_time: nowS - 30, iat: nowS - 30, exp: nowS + 3570 }
    case 'weak': return { sub, amr: ['pwd'], auth_time: nowS - 300, iat: nowS - 300, exp: nowS + 3300 }
    case 'stale': return { sub, amr: ['pwd', 'otp'], auth_time: nowS - 3600, iat: nowS - 3600, exp: nowS + 60 }
  }
}

interface ActionSpec { action: string, tenant?: string, application?: string, amount?: boolean }
/** ~40% of requests hit only the two `**` policies (they "miss" every action-specific one). */
const ACTIONS: Array<[number, ActionSpec]> = [
  [20, { action: 'profile.read' }],
  [8, { action: 'settings.theme.update' }],
  [7, { action: 'reports.export' }],
  [5, { action: 'notifications.list' }],
  [6, { action: 'account.email.change' }],
  [2, { action: 'account.phone.change' }],
  [3, { action: 'account.mfa.totp.add' }],
  [3, { action: 'account.api-keys.create' }],
  [10, { action: 'payments.payout', amount: true }],
  [4, { action: 'payments.refund.issue', amount: true }],
  [4, { action: 'payments.payees.add' }],
  [6, { action: 'payments.history.read' }],
  [3, { action: 'admin.users.impersonate' }],
  [2, { action: 'admin.roles.grant' }],
  [6, { action: 'treasury.transfer', tenant: 'acme' }],
  [2, { action: 'treasury.transfer', tenant: 'acme', application: 'treasury-desk' }]
]

const ENROLLED = [['totp', 'password'], ['passkey', 'totp', 'password'], ['security_key', 'passkey', 'password'], ['sms', 'password']]

export interface MixOptions {
  count: number
  seed: number
  nowS: number
  /** Subjects are drawn uniformly from [0, population). */
  population: number
  /**
   * 'mixed': mostly home device and address, some new devices, travel, threats, IPv6, none.
   * 'known': always one of the subject's 5 known devices from its home address (the history fill).
   */
  variety: 'mixed' | 'known'
  /** Replace the action table (the generated policy sets). */
  actions?: (r: () => number) => ActionSpec
}

export function makeMix (o: MixOptions): DecideBody[] {
  const r = rng(o.seed)
  const out: DecideBody[] = []
  for (let n = 0; n < o.count; n++) {
    const s = Math.floor(r() * o.population)
    const sub = subjectId(s)
    const spec = o.actions ? o.actions(r) : weighted(r, ACTIONS)
    const body: DecideBody = { action: spec.action, subject: { id: sub }, claims: claimsFor(weighted(r, SESSIONS), sub, o.nowS) }
    if (spec.tenant !== undefined) body.tenant = spec.tenant
    else if (r() < 0.2) body.tenant = r() < 0.5 ? 'acme' : 'globex'
    if (spec.application !== undefined) body.application = spec.application
    else if (r() < 0.3) body.application = r() < 0.5 ? 'web' : 'mobile'
    if (r() < 0.6) body.subject!.enrolledFactors = ENROLLED[Math.floor(r() * ENROLLED.length)]!

    if (o.variety === 'known') {
      body.ip = homeOf(s).ip
      body.device = { fingerprint: deviceFp(s, Math.floor(r() * 5)) }
    } else {
      const where = r()
      if (where < 0.80) body.ip = homeOf(s).ip
      else if (where < 0.90) body.ip = TRAVEL_IPS[Math.floor(r() * TRAVEL_IPS.length)]!
      else if (where < 0.92) body.ip = THREAT_IP
      else if (where < 0.95) body.ip = IPV6
      const which = r()
      if (which < 0.80) body.device = { fingerprint: deviceFp(s, 0) }
      else if (which < 0.87) body.device = { fingerprint: deviceFp(s, 1 + Math.floor(r() * 4)) }
      else if (which < 0.95) body.device = { fingerprint: `fp-new-${Math.floor(r() * 1e9)}` }
    }
    const context: Record<string, unknown> = {}
    if (spec.amount === true) context.amount = r() < 0.5 ? Math.round(r() * 1000) : 1000 + Math.round(r() * 9000)
    if (r() < 0.1) context.riskScore = Math.round(r() * 100) / 100
    if (r() < 0.2) context.channel = r() < 0.5 ? 'web' : 'api'
    if (Object.keys(context).length > 0) body.context = context
    out.push(body)
  }
  return out
}

// ---- generated policy sets ------------------------------------------------------------------

export const THREATS_LIST = '# generated\n192.0.2.0/24\n198.51.100.7\n2001:db8:bad::/48\n'

/**
 * `n` policies: 3 wildcards (`**` deny on the threat list, `**` impossible travel, `*.admin.**`
 * new device) and n - 3 with one distinct action each (`svc<k>.res<j>.write`); one in ten has a
 * CEL condition, one in ten newCountry, one in ten riskScore, the rest `always`. 100 per file.
 */
export function generatePolicies (n: number): { sources: FolderSources, actions: string[] } {
  const blocks: string[] = [
    '  - id: gen-threats\n    actions: ["**"]\n    when:\n      - ipList: { lists: [threats] }\n    effect: deny\n    message: Blocked.\n',
    '  - id: gen-travel\n    actions: ["**"]\n    when:\n      - impossibleTravel: { maxSpeedKmh: 900, minDistanceKm: 100, maxAccuracyKm: 200 }\n    require: { aal: 2, factors: [security_key, passkey, totp], maxAge: 5m }\n',
    '  - id: gen-admin-new-device\n    actions: ["*.admin.**"]\n    when:\n      - newDevice: { days: 30 }\n    require: { aal: 2, maxAge: 15m }\n'
  ]
  const actions: string[] = []
  for (let i = 0; i < n - 3; i++) {
    const action = `svc${Math.floor(i / 100)}.res${i % 100}.write`
    actions.push(action)
    const kind = i % 10
    const when = kind === 0
      ? `    when:\n      - condition: has(context.amount) && context.amount > ${1000 + i}\n`
      : kind === 1
        ? '    when:\n      - newCountry: { days: 14 }\n'
        : kind === 2
          ? '    when:\n      - riskScore: { atLeast: 0.5 }\n'
          : ''
    const require = i % 7 === 0 ? '{ aal: 2, factors: [security_key, passkey], maxAge: 5m }' : i % 5 === 0 ? '{ aal: 1, maxAge: 1h }' : '{ aal: 2, maxAge: 15m }'
    blocks.push(`  - id: gen-${i}\n    description: Generated policy ${i}.\n    actions: ["${action}"]\n${when}    require: ${require}\n    message: Confirm it's you (${i}).\n`)
  }
  const policies = []
  for (let f = 0; f * 100 < blocks.length; f++) {
    policies.push({ file: `gen/${String(f).padStart(4, '0')}.yaml`, text: `policies:\n${blocks.slice(f * 100, (f + 1) * 100).join('')}` })
  }
  return { sources: { policies, lists: [{ name: 'threats', file: 'lists/threats.txt', text: THREATS_LIST }] }, actions }
}

/** Actions for a generated set: 80% one of its distinct actions (uniformly), 20% a miss. */
/** Writes `generatePolicies(n)` as a policy folder (plus lists/threats.txt) into `dir`; returns the file count. */
export function writePolicyFolder (dir: string, n: number): number {
  const { sources } = generatePolicies(n)
  for (const s of sources.policies) {
    mkdirSync(dirname(join(dir, s.file)), { recursive: true })
    writeFileSync(join(dir, s.file), s.text)
  }
  mkdirSync(join(dir, 'lists'), { recursive: true })
  writeFileSync(join(dir, 'lists', 'threats.txt'), THREATS_LIST)
  return sources.policies.length
}

export const generatedActions = (actions: string[]) => (r: () => number): ActionSpec =>
  r() < 0.8
    ? { action: actions[Math.floor(r() * actions.length)]!, amount: true }
    : { action: `svc${Math.floor(r() * 1000)}.res${Math.floor(r() * 100)}.read` }

// ---- the history of a subject population, as the Redis store writes it ----------------------

const hashDevice = (fingerprint: string): string => createHash('sha256').update(fingerprint).digest('base64url').slice(0, 22)

/** Copied from src/signals/redis-history.ts (subjectHash), default tenant. */
export const subjectHash = (subject: string): string =>
  createHash('sha256').update(`\u0000\u0000${subject}`).digest('hex').slice(0, 32)

export interface Place { latitude: number, longitude: number, accuracyKm: number, country?: string, city?: string }

/**
 * RESP for one subject: 5 devices, 3 countries and the home location stamped `at`, then the
 * expiry, as RECORD_LUA leaves them (`<ns>h:{h}` hash, `d:`/`c:` fields, `l` JSON, EXPIRE ttl).
 */
export function historyFiller (homes: Place[], at: number, ttl: number, ns = 'stepup:'): (i: number) => string[][] {
  const devices = Array.from({ length: DEVICE_POOL }, (_, k) => hashDevice(`fp-${k}`))
  const locations = homes.map(l => JSON.stringify([at, l.latitude, l.longitude, l.accuracyKm, l.country ?? null, l.city ?? null]))
  const stamp = String(at)
  return i => {
    const key = `${ns}h:{${subjectHash(subjectId(i))}}`
    const fields = ['HSET', key]
    for (let k = 0; k < 5; k++) fields.push(`d:${devices[(i * 5 + k) % DEVICE_POOL]!}`, stamp)
    for (const c of HOME_IPS) fields.push(`c:${c.country}`, stamp)
    fields.push('l', locations[i % 3]!)
    return [fields, ['EXPIRE', key, String(ttl)]]
  }
}

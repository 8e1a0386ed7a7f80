// Shared pieces for the end-to-end attack scenarios (memory and Redis stores alike).
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { compilePolicies } from '../../src/policy/compile.js'
import { PolicyHolder } from '../../src/policy/load.js'
import type { GeoLookup } from '../../src/signals/geo.js'
import type { HistoryStore } from '../../src/signals/history.js'

export const SCENARIO_POLICIES = `
policies:
  - id: payout-from-new-place
    actions: [payments.payout]
    when:
      - newDevice: { days: 30 }
      - newCountry: { days: 14 }
      - impossibleTravel: {}
    require: { aal: 2, maxAge: 15m }
  - id: profile-new-device-light
    description: A weak guard on a routine action; satisfying it must not teach history.
    actions: [profile.view]
    when:
      - newDevice: {}
    require: { aal: 1, maxAge: 1d }
  - id: desk-every-time
    actions: [treasury.transfer]
    require: { aal: 2, maxAge: 0 }
`

export const LONDON = '62.252.0.1'
export const SINGAPORE = '203.116.0.1'

export class Clock {
  constructor (public ms = Date.parse('2026-11-22T12:00:00Z')) {}
  get seconds (): number { return Math.floor(this.ms / 1000) }
  advance (seconds: number): void { this.ms += seconds * 1000 }
}

export async function scenarioApp (history: HistoryStore, geo: GeoLookup, clock: Clock): Promise<FastifyInstance> {
  const { set, problems } = compilePolicies({ policies: [{ file: 'scenario.yaml', text: SCENARIO_POLICIES }], lists: [] })
  if (!set) throw new Error(JSON.stringify(problems))
  return buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new PolicyHolder(set),
    geo,
    history,
    logger: pino({ level: 'silent' }),
    now: () => clock.ms
  })
}

export interface Ask {
  action: string
  amr: string[]
  authAgo?: number
  ip?: string
  device?: string
  application?: string
}

export async function ask (app: FastifyInstance, clock: Clock, a: Ask): Promise<{ decision: string, reasons: Array<{ policy: string, trigger: string, outcome: string, detail?: string }> }> {
  const res = await app.inject({
    method: 'POST',
    url: '/decide',
    payload: {
      action: a.action,
      tenant: 'acme',
      ...(a.application ? { application: a.application } : {}),
      subject: { id: 'victim' },
      claims: { sub: 'victim', amr: a.amr, auth_time: clock.seconds - (a.authAgo ?? 0) },
      ip: a.ip ?? SINGAPORE,
      device: { fingerprint: a.device ?? 'attacker-laptop' }
    }
  })
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${res.body}`)
  return res.json()
}

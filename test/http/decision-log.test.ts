// The audit line (docs/operations.md): one structured pino line per decision, and never a device
// fingerprint in clear.
import t from 'tap'
import { pino, type Logger } from 'pino'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, decide, postDecide, session, UUIDV7 } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const SECRET = 'my-secret-fingerprint-123'

/** A logger writing JSON lines into `lines`. */
function capture (): { lines: string[], logger: Logger } {
  const lines: string[] = []
  const logger: Logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(s) } })
  return { lines, logger }
}

const parse = (lines: string[]): Array<Record<string, unknown>> =>
  lines.flatMap(l => l.split('\n')).filter(l => l.trim() !== '').map(l => JSON.parse(l) as Record<string, unknown>)

t.test('one line per decision with decisionId, event, decision, policyRevision, subject, action and policies', async t => {
  const { lines, logger } = capture()
  const { app } = await buildTestApp({ geo, logger })
  t.teardown(() => app.close())
  const device = { fingerprint: SECRET }

  const requests: Array<{ body: Record<string, unknown>, decision: string, event: string, policies: string[] }> = [
    { body: { action: 'profile.read', ...session('log-1', ['pwd']), device }, decision: 'allow', event: 'auth.allowed', policies: [] },
    { body: { action: 'account.email.change', tenant: 'acme', ...session('log-1', ['pwd']), device }, decision: 'step_up', event: 'auth.step_up_initiated', policies: ['account-recovery-channels', 'new-device-sensitive'] },
    { body: { action: 'account.email.change', tenant: 'acme', ...session('log-1', ['pwd', 'otp']), device }, decision: 'allow', event: 'auth.step_up_skipped', policies: ['account-recovery-channels', 'new-device-sensitive'] },
    { body: { action: 'profile.read', ...session('log-2', ['pwd']), device, ip: '192.0.2.7' }, decision: 'deny', event: 'auth.access_denied', policies: ['threat-list'] }
  ]

  const answers: Array<{ decision: string, decisionId: string, policyRevision: string }> = []
  for (const r of requests) {
    const res = await postDecide(app, r.body)
    t.equal(res.statusCode, 200)
    t.notOk(res.body.includes(SECRET), 'the answer does not echo the fingerprint')
    answers.push(res.json<{ decision: string, decisionId: string, policyRevision: string }>())
  }
  // A bad request is not a decision: no line for it.
  t.equal((await postDecide(app, { action: 'a..b', ...session('log-3', ['pwd']), device })).statusCode, 400)

  const entries = parse(lines)
  const decisions = entries.filter(e => e.msg === 'decision')
  t.equal(decisions.length, requests.length, 'one decision line per decision, none for the 400')
  requests.forEach((r, i) => {
    const line = decisions[i]!
    const answer = answers[i]!
    t.equal(answer.decision, r.decision, `answer ${i + 1}`)
    t.match(line.decisionId, UUIDV7)
    t.equal(line.decisionId, answer.decisionId, `line ${i + 1}: the decisionId of the answer`)
    t.equal(line.event, r.event, `line ${i + 1}: event`)
    t.equal(line.decision, r.decision, `line ${i + 1}: decision`)
    t.equal(line.subject, (r.body.subject as { id: string }).id, `line ${i + 1}: subject`)
    t.equal(line.action, r.body.action, `line ${i + 1}: action`)
    t.same([...(line.policies as string[])].sort(), r.policies, `line ${i + 1}: policies`)
    t.match(line.policyRevision, /^sha256:[0-9a-f]{16}$/, `line ${i + 1}: policyRevision`)
    t.equal(line.policyRevision, answer.policyRevision, `line ${i + 1}: the revision of the answer`)
    // Ids and the outcome only: the audit record carries the requirement, the request and the facts.
    t.same(Object.keys(line).filter(k => !['level', 'time', 'pid', 'hostname', 'msg'].includes(k)).sort(),
      ['action', 'decision', 'decisionId', 'event', 'policies', 'policyRevision', 'subject', ...(r.body.tenant !== undefined ? ['tenant'] : [])].sort(), `line ${i + 1}: fields`)
  })
  t.equal(decisions[1]!.tenant, 'acme', 'the tenant when given')
  t.equal(new Set(decisions.map(d => d.decisionId)).size, decisions.length, 'distinct decision ids')

  t.notOk(lines.join('').includes(SECRET), 'the fingerprint never appears in clear in the log')
  t.ok(decisions.every(d => d.device === undefined), 'not even its hash: the audit record keeps the request')
})

t.test('the fingerprint stays out of the log when the history store fails too', async t => {
  const { lines, logger } = capture()
  const failing = {
    kind: 'memory' as const,
    read: async () => { throw new Error(`store down while reading ${SECRET.length} bytes`) },
    record: async () => { throw new Error('store down') },
    consume: async () => { throw new Error('store down') },
    psd2: {
      read: async () => { throw new Error('store down') },
      exempt: async () => { throw new Error('store down') },
      completeSca: async () => { throw new Error('store down') },
      recordFailure: async () => { throw new Error('store down') },
      clearFailures: async () => { throw new Error('store down') }
    },
    ping: async () => false,
    close: async () => {}
  }
  const { app } = await buildTestApp({ geo, logger, history: failing })
  t.teardown(() => app.close())
  const body = await decide(app, { action: 'account.profile.update', ...session('log-4', ['pwd']), device: { fingerprint: SECRET } })
  t.equal(body.decision, 'step_up')
  const entries = parse(lines)
  t.equal(entries.filter(e => e.msg === 'decision').length, 1)
  t.ok(entries.some(e => e.level === 40 && /history store/.test(String(e.msg))), 'a warning says the store failed')
  t.notOk(lines.join('').includes(SECRET))
})

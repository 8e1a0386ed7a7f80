// The playground's API: who may use it, that its decisions are dry runs, and that an edited
// policy file is tried without touching the set that serves.
import t, { type Test } from 'tap'
import { pino } from 'pino'
import Fastify from 'fastify'
import { buildApp, fastifyOptions } from '../../src/app.js'
import { playgroundRoutes } from '../../src/playground/routes.js'
import type { WorkerLoader } from '../../src/policy/worker-load.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { EXAMPLE_POLICIES, NOW_MS, NOW_S, policySet } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const ADMIN = 'admin-key-0123456789abcdef'
const API = 'api-key-0123456789abcdefgh'

async function setup (t: Test, config: { host?: string, apiKeys?: string[], adminApiKeys?: string[] } = {}) {
  const policies = new PolicyHolder(await policySet(EXAMPLE_POLICIES), () => NOW_MS)
  const history = createMemoryHistoryStore({ maxSubjects: 100 })
  const app = await buildApp({ apiKeys: config.apiKeys ?? [], adminApiKeys: config.adminApiKeys ?? [], policiesDir: EXAMPLE_POLICIES, ...(config.host !== undefined ? { host: config.host } : {}) },
    { policies, geo, history, logger: pino({ level: 'silent' }), now: () => NOW_MS, maxEventLoopDelayMs: 0 })
  t.teardown(() => app.close())
  return { app, policies, history }
}

const newDevice = {
  action: 'account.email.change',
  subject: { id: 'alice' },
  claims: { sub: 'alice', amr: ['pwd', 'hwk'], auth_time: NOW_S - 60 },
  device: { fingerprint: 'laptop-new' }
}

t.test('open on loopback without API keys; behind the admin key otherwise; off without one', async t => {
  const open = await setup(t)
  t.equal((await open.app.inject({ url: '/playground' })).statusCode, 200)
  t.equal((await open.app.inject({ url: '/playground/api/examples' })).statusCode, 200)

  for (const config of [{ host: '0.0.0.0', adminApiKeys: [ADMIN] }, { apiKeys: [API], adminApiKeys: [ADMIN] }]) {
    const { app } = await setup(t, config)
    t.equal((await app.inject({ url: '/playground/api/examples' })).statusCode, 401, `${JSON.stringify(config)}: no key`)
    t.equal((await app.inject({ url: '/playground/api/examples', headers: { authorization: `Bearer ${API}` } })).statusCode, 401, 'an API key is not an admin key')
    t.equal((await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice } })).statusCode, 401)
    t.equal((await app.inject({ url: '/playground/api/examples', headers: { authorization: `Bearer ${ADMIN}` } })).statusCode, 200, 'the admin key opens it')
    t.equal((await app.inject({ url: '/playground' })).statusCode, 200, 'the page itself holds no data')
  }

  for (const config of [{ host: '0.0.0.0' }, { apiKeys: [API] }]) {
    const { app } = await setup(t, config)
    t.equal((await app.inject({ url: '/playground' })).statusCode, 404, `${JSON.stringify(config)}: no playground`)
    t.equal((await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice } })).statusCode, 404)
  }
})

t.test('a playground decision is a dry run: it teaches no history and writes no audit or metric', async t => {
  const { app } = await setup(t)
  const first = (await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice } })).json()
  t.equal(first.decision.decision, 'allow')
  t.match(first.decision.reasons.find((r: { policy: string }) => r.policy === 'new-device-sensitive'), { trigger: 'newDevice', outcome: 'satisfied' })
  const again = (await app.inject({ method: 'POST', url: '/decide', payload: { ...newDevice, claims: { ...newDevice.claims, amr: ['pwd'] } } })).json()
  t.equal(again.decision, 'step_up', 'the device is still new for the live service: the dry run taught nothing')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /stepup_decisions_total\{decision="allow",event="auth.step_up_skipped"\} 0/, 'the dry run is not counted')
})

t.test('the answer carries the client view and a tree of why', async t => {
  const { app } = await setup(t)
  const res = await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: { ...newDevice, claims: { ...newDevice.claims, amr: ['pwd'] } } } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.decision.decision, 'step_up')
  t.equal(body.client.status, 401)
  t.match(body.client.headers['WWW-Authenticate'], /^Bearer error="insufficient_user_authentication"/)
  t.match(body.tree.find((n: { label: string }) => n.label.startsWith('new-device-sensitive')), { label: 'new-device-sensitive → step up', children: [{ label: 'newDevice: fired', detail: 'device never seen for this user' }] })
})

t.test('an edited file is tried with the folder; the live set is untouched', async t => {
  const { app, policies } = await setup(t)
  const before = policies.current
  const text = 'policies:\n  - id: no-email-changes\n    actions: ["account.email.*"]\n    effect: deny\n    message: Not today.\n'
  const res = (await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice, policy: { file: 'account.yaml', text } } })).json()
  t.match(res.candidate, { file: 'account.yaml', replaced: true, errors: [] })
  t.equal(res.decision.decision, 'deny')
  t.equal(res.decision.message, 'Not today.')
  t.equal(policies.current, before, 'the set that serves is the same object')
  t.equal((await app.inject({ method: 'POST', url: '/decide', payload: newDevice })).json().decision, 'allow', 'the live service still allows')

  const broken = (await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice, policy: { file: 'new.yaml', text: 'policies:\n  - id: x\n    actions: [a]\n    require: { aal: 7 }\n' } } })).json()
  t.match(broken.candidate, { file: 'new.yaml', replaced: false, errors: [/^new\.yaml:4:\d+ policies\[0\]\.require\.aal/] })
  t.notOk('decision' in broken, 'no decision from a file that does not validate')
})

t.test('a hostile edited file is refused by the loading worker while decisions go on', async t => {
  const { app } = await setup(t)
  const deep = `policies: ${'['.repeat(29_000)}${']'.repeat(29_000)}\n` // within the 60,000 characters the pane takes
  let laughs = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
  for (let i = 1; i <= 9; i++) laughs += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(',')}]\n`
  laughs += 'policies:\n  - id: laughs\n    actions: [x.y]\n    description: *a9\n'
  for (const [text, problem] of [[deep, /^hostile\.yaml:\d+:\d+ \(yaml\): nesting exceeded/], [laughs, /^hostile\.yaml:\d+:\d+ \(yaml\): aliases expand to more than/]] as const) {
    const order: string[] = []
    const tried = app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice, policy: { file: 'hostile.yaml', text } } })
      .then(res => { order.push('tried'); return res })
    // Parsing happens in the worker: a decision asked meanwhile does not wait for it.
    await app.inject({ method: 'POST', url: '/decide', payload: newDevice }).then(() => order.push('decided'))
    const res = await tried
    t.equal(res.statusCode, 200)
    t.match(res.json().candidate, { file: 'hostile.yaml', errors: [problem] })
    t.notOk('decision' in res.json())
    t.same(order, ['decided', 'tried'], 'the decision was answered first')
  }
})

t.test('a check that fails for another reason is the candidate\'s error, never a 5xx', async t => {
  const app = Fastify(fastifyOptions(pino({ level: 'silent' })))
  const failing: WorkerLoader = {
    load: async () => { throw new Error('no thread') },
    tryFile: async () => { throw new Error('no thread') },
    warm: () => {},
    close: async () => {}
  }
  await app.register(playgroundRoutes, {
    access: 'open', guard: [], policies: new PolicyHolder(await policySet(EXAMPLE_POLICIES), () => NOW_MS), geo: () => geo,
    history: createMemoryHistoryStore({ maxSubjects: 10 }), now: () => NOW_MS, loader: failing
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice, policy: { file: 'x.yaml', text: 'policies: []\n' } } })
  t.equal(res.statusCode, 200)
  t.match(res.json().candidate, { file: 'x.yaml', errors: [/^x\.yaml:1:1 \(load\): the file could not be checked here/] })
  t.notOk('decision' in res.json())
})

t.test('bad input gets a 4xx naming the field', async t => {
  const { app } = await setup(t)
  const cases: Array<[unknown, RegExp]> = [
    [{}, /request/],
    [{ request: { action: 'a..b', subject: { id: 'u' } } }, /action/],
    [{ request: newDevice, policy: { file: '../../etc/passwd.yaml', text: '' } }, /file/],
    [{ request: newDevice, policy: { text: 'x'.repeat(60_001) } }, /text/],
    [{ request: newDevice, extra: 1 }, /extra/]
  ]
  for (const [payload, field] of cases) {
    const res = await app.inject({ method: 'POST', url: '/playground/api/decide', payload: payload as Record<string, unknown> })
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80))
    t.match(res.json(), { error: 'invalid_request', message: field })
  }
  const yamlBomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + Array.from({ length: 12 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`).join('\n') + '\npolicies: []\n'
  const started = Date.now()
  const bomb = await app.inject({ method: 'POST', url: '/playground/api/decide', payload: { request: newDevice, policy: { text: yamlBomb } } })
  t.ok(bomb.statusCode < 500, `an alias bomb is no 5xx (${bomb.statusCode})`)
  t.ok(Date.now() - started < 10_000, 'and does not stall the service')
})

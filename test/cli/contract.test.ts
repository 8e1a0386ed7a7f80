// Every case file — the engine's (test/cases) and the example policies' suite (policies/) — goes
// through the decision contract (src/contract) as POST /decide does: the same request corrupted
// the four ways the issue names fails its case with the very message the route answers 400 with.
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { validateDecideBody } from '../../src/contract/index.js'
import { ApiError } from '../../src/errors.js'
import { loadPolicySet } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { DEFAULT_NOW, loadSuiteSet, runCase, type Case, type Step, type Suite } from '../../src/testing/suite.js'
import { buildTestApp, postDecide, session } from '../helpers/app.js'

const root = resolve(import.meta.dirname, '../..')
const suiteFiles = [
  ...readdirSync(join(root, 'test/cases')).filter(f => f.endsWith('.test.yaml')).map(f => join(root, 'test/cases', f)),
  ...readdirSync(join(root, 'policies')).filter(f => f.endsWith('.test.yaml')).map(f => join(root, 'policies', f))
].sort()

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const { app } = await buildTestApp({ geo })
t.teardown(() => app.close())

type Request = Record<string, unknown>
const corruptions: Array<{ name: string, apply: (r: Request) => Request }> = [
  { name: 'action a..b', apply: r => ({ ...r, action: 'a..b' }) },
  { name: 'an unknown field', apply: r => ({ ...r, unexpected: true }) },
  { name: 'ip: not-an-ip', apply: r => ({ ...r, ip: 'not-an-ip' }) },
  // A suite's `token:` stands for verified claims: the corruption goes where the claims are.
  { name: 'amr: "pwd otp"', apply: r => r.token !== undefined ? { ...r, token: { ...(r.token as Request), amr: 'pwd otp' } } : ({ ...r, claims: { ...(r.claims as Request | undefined), amr: 'pwd otp' } }) }
]

/** What POST /decide answers for a corruption of a valid body: the message a suite must repeat. */
const routeMessages = new Map<string, string>()
for (const c of corruptions) {
  const res = await postDecide(app, c.apply({ action: 'profile.read', ...session('contract-1', ['pwd']) }))
  routeMessages.set(c.name, `${res.statusCode} ${res.body}`)
}

t.test('the route and the contract\'s validator refuse each corruption alike', async t => {
  for (const c of corruptions) {
    const [status, ...rest] = routeMessages.get(c.name)!.split(' ')
    t.equal(status, '400', `${c.name}: the route refuses it`)
    const { error, message } = JSON.parse(rest.join(' ')) as { error: string, message: string }
    t.equal(error, 'invalid_request')
    routeMessages.set(c.name, message)
    t.throws(() => validateDecideBody(c.apply({ action: 'profile.read', subject: { id: 'u' } })), new ApiError('invalid_request', message), `${c.name}: the validator says the same`)
  }
})

const stepsOf = (c: Case): Step[] => c.steps ?? [{ request: c.request ?? {}, expect: c.expect ?? {} }]
const expectsError = (s: Step): boolean => s.expect !== null && typeof s.expect === 'object' && 'error' in s.expect

let checked = 0
for (const file of suiteFiles) {
  t.test(file.slice(root.length + 1), async t => {
    const suite = parseYaml(readFileSync(file, 'utf8')) as Suite
    const set = suite.policies === undefined && suite.policiesDir === undefined
      ? (await loadPolicySet(join(root, 'policies'))).set
      : await loadSuiteSet(suite, file)
    for (const c of suite.cases) {
      const first = stepsOf(c)[0]!
      if (expectsError(first)) continue
      for (const corruption of corruptions) {
        const steps = stepsOf(c).map((s, i) => (i === 0 ? { ...s, request: corruption.apply(s.request) } : s))
        const result = await runCase({ suite: 'contract', case: { name: c.name, ...(c.history ? { history: c.history } : {}), ...(c.tenant ? { tenant: c.tenant } : {}), steps }, set, now: suite.now ?? DEFAULT_NOW, geo })
        const wanted = `invalid request (POST /decide would answer 400 invalid_request): ${routeMessages.get(corruption.name)!}`
        t.notOk(result.ok, `${c.name}, ${corruption.name}: the case fails`)
        t.ok(result.failures.some(f => f.endsWith(wanted)), `${c.name}, ${corruption.name}: with the route's message`, { failures: result.failures })
        checked++
      }
    }
  })
}

t.test('every case file was checked', async t => {
  t.ok(suiteFiles.some(f => f.endsWith('policies/examples.test.yaml')), 'the example policies\' suite is among them')
  t.ok(checked >= 4 * 100, `at least 100 cases x 4 corruptions (checked ${checked})`)
})

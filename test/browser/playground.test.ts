// The playground in headless Chromium: fill a request, read the decision, the client's
// challenge and the trigger that fired; try an edited policy file in the second pane.
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { EXAMPLE_POLICIES, policySet } from '../helpers/app.js'
import type { Browser } from 'playwright-core'
import { ARTIFACTS, browserMissing, launch, listen } from './browser.js'

// One geo lookup and one Chromium for the file; each test has its own app and its own page
// (a fresh browser context: no cookies or storage shared).
const geo = await openGeoLookup({})
t.teardown(() => geo.close())
let started: Promise<Browser> | undefined
const browser = (): Promise<Browser> => (started ??= launch())
t.teardown(async () => { if (started) await (await started).close() })

t.test('a newcomer decides in the playground and sees why', { skip: browserMissing() ?? false }, async t => {
  const app = await buildApp({ apiKeys: [], adminApiKeys: [], policiesDir: EXAMPLE_POLICIES }, {
    policies: new PolicyHolder(await policySet(EXAMPLE_POLICIES)),
    geo,
    history: createMemoryHistoryStore({ maxSubjects: 100 }),
    logger: pino({ level: 'silent' }),
    maxEventLoopDelayMs: 0
  })
  t.teardown(() => app.close())
  const base = await listen(app)
  const page = await (await browser()).newPage({ viewport: { width: 1400, height: 1100 } })
  t.teardown(() => page.close())
  page.setDefaultTimeout(30_000)
  const pageErrors: string[] = []
  page.on('pageerror', err => pageErrors.push(err.message))

  await page.goto(`${base}/playground`)
  await page.locator('#example option').first().waitFor({ state: 'attached' })
  t.match(JSON.parse(await page.locator('#request').inputValue()), { action: 'payments.payout' }, 'pre-filled with the first example')
  t.ok(await page.locator('#example option').count() >= 4, 'the example cases are offered')

  // A request typed by hand: a new country for this user (an address in Singapore), password only.
  await page.locator('#request').fill(JSON.stringify({
    action: 'account.email.change',
    subject: { id: 'newcomer' },
    claims: { sub: 'newcomer', amr: ['pwd'], auth_time: Math.floor(Date.now() / 1000) - 30 },
    ip: '8.8.8.8',
    device: { fingerprint: 'browser-1' }
  }, null, 2))
  await page.locator('#decide').click()
  const live = page.locator('#live-result')
  await live.locator('.decision').waitFor()
  t.equal(await live.locator('.decision').innerText(), 'step_up')
  t.match(await live.locator('pre.client').innerText(), /^HTTP 401\nWWW-Authenticate: Bearer error="insufficient_user_authentication"/)
  const tree = await live.locator('ul.tree').innerText()
  t.match(tree, /new-country → step up/, 'the policy that fired')
  t.match(tree, /newCountry: fired/, 'the trigger that fired')
  t.match(tree, /country: US/, 'with its figures')
  await page.screenshot({ path: join(ARTIFACTS, 'playground-decision.png'), fullPage: true })

  // The second pane: the same request against an edited account.yaml that denies email changes.
  await page.locator('#file').selectOption({ label: 'account.yaml' })
  t.equal(await page.locator('#file-name').inputValue(), 'account.yaml')
  await page.locator('#policy').fill('policies:\n  - id: freeze-email\n    actions: ["account.email.*"]\n    effect: deny\n    message: Email changes are frozen.\n')
  await page.locator('#try').click()
  const candidate = page.locator('#candidate-result')
  await candidate.locator('.decision').waitFor()
  t.equal(await candidate.locator('.decision').innerText(), 'deny')
  t.match(await candidate.locator('ul.tree').innerText(), /freeze-email → deny/)
  t.match(await candidate.innerText(), /Replaced account\.yaml/)

  // A broken file shows its problems, and the live pane still decides with the live set.
  await page.locator('#policy').fill('policies:\n  - id: broken\n    actions: [a]\n    require: { aal: 9 }\n')
  await page.locator('#try').click()
  await candidate.locator('.problems').waitFor()
  t.match(await candidate.locator('.problems').innerText(), /account\.yaml:4:\d+ policies\[0\]\.require\.aal/)
  await page.locator('#decide').click()
  await live.locator('.decision').waitFor()
  t.equal(await live.locator('.decision').innerText(), 'step_up', 'the live set did not change')
  await page.screenshot({ path: join(ARTIFACTS, 'playground-candidate.png'), fullPage: true })
  t.same(pageErrors, [], 'no script errors')
})

t.test('behind the admin key, the page asks for it and then works', { skip: browserMissing() ?? false }, async t => {
  const admin = 'admin-key-0123456789abcdef'
  const app = await buildApp({ apiKeys: ['api-key-0123456789abcdefgh'], adminApiKeys: [admin], policiesDir: EXAMPLE_POLICIES }, {
    policies: new PolicyHolder(await policySet(EXAMPLE_POLICIES)),
    geo,
    history: createMemoryHistoryStore({ maxSubjects: 100 }),
    logger: pino({ level: 'silent' }),
    maxEventLoopDelayMs: 0
  })
  t.teardown(() => app.close())
  const base = await listen(app)
  const page = await (await browser()).newPage()
  t.teardown(() => page.close())
  page.setDefaultTimeout(30_000)

  await page.goto(`${base}/playground`)
  await page.locator('#key-row').waitFor({ state: 'visible' })
  t.match(await page.locator('#status').innerText(), /admin key/)
  t.equal(await page.locator('#example option').count(), 0, 'nothing loaded without the key')
  await page.locator('#key').fill(admin)
  await page.locator('#key-apply').click()
  await page.locator('#example option').first().waitFor({ state: 'attached' })
  await page.locator('#decide').click()
  await page.locator('#live-result .decision').waitFor()
  t.equal(await page.locator('#live-result .decision').innerText(), 'step_up', 'the first example decides')
})

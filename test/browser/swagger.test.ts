// Swagger UI at /docs works for a newcomer: "Try it out" on POST /decide with the default
// example answers 200 with a decision (before, the generated example body answered 400).
import { join } from 'node:path'
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp } from '../helpers/app.js'
import { ARTIFACTS, browserMissing, launch, listen } from './browser.js'

t.test('Try it out on POST /decide with the default example answers 200 with a decision', { skip: browserMissing() ?? false }, async t => {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())
  const { app } = await buildTestApp({ geo, now: Date.now })
  t.teardown(() => app.close())
  const base = await listen(app)
  const browser = await launch()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  page.setDefaultTimeout(30_000)

  const decideCalls: number[] = []
  page.on('response', r => { if (r.url() === `${base}/decide`) decideCalls.push(r.status()) })

  await page.goto(`${base}/docs`)
  const operation = page.locator('#operations-decisions-decide')
  await operation.locator('.opblock-summary').click()
  await operation.locator('.try-out__btn').click()
  const body = await operation.locator('textarea.body-param__text').inputValue()
  t.match(JSON.parse(body), { action: 'payments.payout', context: { amount: 2500 } }, 'the default body is the step-up example, not generated filler')
  await operation.locator('button.execute').click()

  const live = operation.locator('.live-responses-table')
  const status = live.locator('tbody .response-col_status').first()
  await status.waitFor()
  t.equal((await status.innerText()).trim(), '200')
  const answer = JSON.parse(await live.locator('.response-col_description pre').first().innerText()) as { decision: string, reasons: unknown[] }
  t.match(answer.decision, /^(allow|step_up|deny)$/)
  t.ok(answer.reasons.length > 0, 'with the reasons')
  t.same(decideCalls, [200], 'the browser really called the service')
  await status.scrollIntoViewIfNeeded()
  await page.screenshot({ path: join(ARTIFACTS, 'swagger-try-it-out.png') })
})

// /readyz needs no key, so it shows how many problems the refused reload had and the first few,
// never the whole list (a folder of generated files can hold megabytes of them).
import t from 'tap'
import { PolicyLoadError } from '../../src/errors.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const { app, policies } = await buildTestApp({ geo })
t.teardown(() => app.close())

t.test('100,000 problems: a count and the first five, each shortened', async t => {
  const problems = Array.from({ length: 100_000 }, (_, i) => ({
    file: `generated/file-${String(i).padStart(6, '0')}.yaml`, line: 3, col: 5, field: 'policies[0].require.aal', message: 'must be one of 1, 2, 3 ' + 'x'.repeat(1000), severity: 'error' as const
  }))
  policies.refuse(new PolicyLoadError(problems))
  const res = await app.inject('/readyz')
  t.equal(res.statusCode, 200, 'a good set still serves')
  t.ok(res.body.length < 4096, `the body is ${res.body.length} bytes`)
  const body = res.json()
  t.equal(body.status, 'degraded')
  t.equal(body.policies.lastErrorCount, 100_000)
  t.equal(body.policies.lastError.length, 5)
  t.match(body.policies.lastError[0], /^generated\/file-000000\.yaml:3:5 policies\[0\]\.require\.aal: must be one of 1, 2, 3/)
  t.ok(body.policies.lastError.every((line: string) => line.length <= 300), 'each line is shortened')
  policies.clearError()
  t.notOk('lastError' in (await app.inject('/readyz')).json().policies, 'gone once the folder is valid again')
})

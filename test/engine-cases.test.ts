// Runs every decision case file in test/cases (the same format `stepup test` runs).
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { openGeoLookup } from '../src/signals/geo.js'
import { runSuiteFile } from '../src/testing/suite.js'

const dir = join(import.meta.dirname, 'cases')
const files = readdirSync(dir).filter(f => f.endsWith('.test.yaml')).sort()
const geo = await openGeoLookup({})

let total = 0
for (const file of files) {
  const results = await runSuiteFile(join(dir, file), geo)
  total += results.length
  t.test(file, async t => {
    for (const r of results) t.ok(r.ok, r.name, r.ok ? {} : { diagnostic: true, failures: r.failures })
  })
}
t.ok(total >= 60, `at least 60 decision cases (found ${total})`)

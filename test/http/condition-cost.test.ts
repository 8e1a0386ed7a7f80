// The worst case of a condition over caller data: a 60 KB hostile request through /decide
// answers quickly, and a condition quadratic in the request is refused when it loads.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PolicyLoadError } from '../../src/errors.js'
import { loadPolicySet } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, postDecide, session } from '../helpers/app.js'

const folder = (yaml: string): string => {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-cost-'))
  writeFileSync(join(dir, 'policies.yaml'), yaml)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const LINEAR = folder(`policies:
  - id: tags
    actions: [doc.read]
    when:
      - condition: "has(context.tags) && context.tags.exists(x, x in ['q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8'])"
  - id: mails
    actions: [doc.read]
    when:
      - condition: "has(context.mails) && context.mails.exists(e, e.matches('^(a|aa)+@corp[.]example$'))"
  - id: filtered
    actions: [doc.read]
    when:
      - condition: "has(context.n) && context.n.filter(x, x > 3 && x < 9 && x != 5).size() > 100000"
`)

t.test('a condition quadratic in the request is refused at load, with file and line', async t => {
  const dir = folder(`policies:
  - id: quadratic
    actions: [doc.read]
    when:
      - condition: "context.a.exists(r, r in context.b)"
`)
  const err = await loadPolicySet(dir).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof PolicyLoadError, 'refused')
  const problem = (err as PolicyLoadError).problems[0]
  t.match(problem, { file: 'policies.yaml', line: 5, message: /could cost up to/ })
})

t.test('a 60 KB hostile request answers quickly through the conditions at their worst', async t => {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())
  const { app } = await buildTestApp({ geo, policiesDir: LINEAR })
  t.teardown(() => app.close())
  const base = { action: 'doc.read', ...session('user-1', ['pwd']) }
  const bodies = {
    tags: { ...base, context: { tags: Array.from({ length: 12_000 }, () => 'zz') } },
    mails: { ...base, context: { mails: Array.from({ length: 30 }, () => 'a'.repeat(1900) + '!') } },
    n: { ...base, context: { n: Array.from({ length: 29_000 }, () => 7) } }
  }
  for (const [name, body] of Object.entries(bodies)) {
    const size = JSON.stringify(body).length
    t.ok(size > 55_000 && size < 64 * 1024, `${name}: ${size} bytes`)
    const started = performance.now()
    const res = await postDecide(app, body)
    const ms = performance.now() - started
    t.equal(res.statusCode, 200, res.body.slice(0, 200))
    t.equal(res.json().decision, 'allow', `${name}: no condition holds`)
    t.ok(ms < 500, `${name}: ${ms.toFixed(0)} ms (< 500)`)
  }
})

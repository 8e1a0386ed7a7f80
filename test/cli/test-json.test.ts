// `stepup test --json` and `stepup test <file.test.yaml>`, run in-process through run(argv, io):
// the JSON agrees with the text output of the same run, one file runs only its suite, and a
// missing or wrong file ends with one clean line and exit 2.
import { resolve } from 'node:path'
import t, { type Test } from 'tap'
import { run } from '../../src/cli/run.js'
import type { TestReport } from '../../src/cli/test-suites.js'

process.chdir(resolve(import.meta.dirname, '../..')) // the paths shown are relative to the working directory
delete process.env.GEOIP_CITY_DB

interface Run { code: number, out: string, err: string, lines: string[] }
async function stepup (...argv: string[]): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const code = await run(argv, { out: line => { out.push(line) }, err: line => { err.push(line) } })
  return { code, out: out.join('\n'), err: err.join('\n'), lines: out.join('\n').split('\n') }
}

/** The totals of the text form's last line, "N passed, M failed". */
function textTotals (r: Run): { passed: number, failed: number } {
  const m = /^(\d+) passed, (\d+) failed$/.exec(r.lines.at(-1) ?? '')
  if (!m) throw new Error(`no totals line in: ${r.out}`)
  return { passed: Number(m[1]), failed: Number(m[2]) }
}

/** The text form's suites, as "file" headers and "ok"/"FAIL" case lines. */
function textCases (r: Run): Array<{ name: string, ok: boolean }> {
  return r.lines.flatMap(l => {
    const m = /^ {2}(ok|FAIL) {2,4}(.*)$/.exec(l)
    return m ? [{ name: m[2]!, ok: m[1] === 'ok' }] : []
  })
}

async function both (t: Test, ...argv: string[]): Promise<{ text: Run, json: Run, report: TestReport }> {
  const text = await stepup('test', ...argv)
  const json = await stepup('test', ...argv, '--json')
  t.equal(json.code, text.code, 'the same exit code with and without --json')
  let report: TestReport
  try {
    report = JSON.parse(json.out) as TestReport
  } catch (err) {
    t.fail(`--json printed something that is not JSON: ${json.out.slice(0, 200)}`)
    throw err
  }
  const totals = textTotals(text)
  t.same(report.totals, { suites: report.suites.length, cases: totals.passed + totals.failed, ...totals }, 'the totals of the text output')
  t.same(report.suites.flatMap(s => s.cases.map(c => ({ name: c.name, ok: c.ok }))), textCases(text), 'every case, in order, as the text lists them')
  t.equal(report.ok, text.code === 0)
  return { text, json, report }
}

t.test('--json on the valid fixture folder, with coverage', async t => {
  const { text, report } = await both(t, 'test/fixtures/cli/valid', '--coverage')
  t.equal(text.code, 0, text.err)
  t.match(report, {
    ok: true,
    path: 'test/fixtures/cli/valid',
    totals: { suites: 3, cases: 8, passed: 8, failed: 0 }
  })
  t.same(report.suites.map(s => [s.file, s.name, s.ok]), [
    ['test/fixtures/cli/valid/suites/by-dir.test.yaml', null, true],
    ['test/fixtures/cli/valid/suites/inline.test.yaml', null, true],
    ['test/fixtures/cli/valid/valid.test.yaml', 'valid fixture', true]
  ])
  t.same(report.coverage, [
    {
      set: 'test/fixtures/cli/valid',
      policies: { fired: 5, total: 5 },
      triggers: { fired: 5, total: 6 },
      notFired: [{ kind: 'trigger', policy: 'new-device', when: 1, trigger: 'condition has(context.risky) && context.risky == true', file: 'policies.yaml', line: 9, reportOnly: false }]
    },
    {
      set: 'test/fixtures/cli/valid/suites/inline.test.yaml (inline policies)',
      policies: { fired: 1, total: 1 },
      triggers: { fired: 1, total: 1 },
      notFired: []
    }
  ])
  // the same figures as the text form's coverage lines
  for (const c of report.coverage!) {
    t.ok(text.lines.includes(`coverage of ${c.set}: ${c.policies.fired}/${c.policies.total} policies fired, ${c.triggers.fired}/${c.triggers.total} triggers`), c.set)
  }
})

t.test('--json on the example policies: totals match the text output, with the coverage', async t => {
  const { text, report } = await both(t, 'policies', '--coverage')
  t.equal(text.code, 0, text.out)
  t.ok(report.totals.cases >= 15, `${report.totals.cases} cases`)
  t.equal(report.totals.failed, 0)
  t.match(report.coverage, [{ set: 'policies', policies: { fired: 16, total: 16 }, triggers: { fired: 16, total: 16 }, notFired: [] }])
})

t.test('--json with failures: exit 1, every failure line, a suite that cannot load says why', async t => {
  const failing = await both(t, 'test/fixtures/cli/failing-suite')
  t.equal(failing.json.code, 1)
  t.notOk('coverage' in failing.report, 'coverage only with --coverage')
  t.same(failing.report.suites, [{
    file: 'test/fixtures/cli/failing-suite/cases/broken.test.yaml',
    name: null,
    ok: false,
    errors: [],
    cases: [
      { name: 'a fresh AAL 2 session exports', ok: true, failures: [] },
      {
        name: 'this expectation is wrong on purpose',
        ok: false,
        failures: [
          'decision: expected "allow", got "step_up"',
          'reasons: expected 0 item(s), got 1: [{"policy":"exports","trigger":"always","outcome":"step_up","unmet":["aal"]}]'
        ]
      }
    ]
  }])
  const broken = await both(t, 'test/fixtures/cli/invalid')
  t.equal(broken.json.code, 1)
  const suite = broken.report.suites[0]!
  t.equal(suite.errors[0], 'the policies do not validate:')
  t.ok(suite.errors.includes('test/fixtures/cli/invalid/payments.yaml:5:33 policies[0].require.factors: error: no factor class can meet aal 3 with factors [totp]: nobody could ever step up'))
  t.same(suite.cases, [{ name: 'never runs', ok: false, failures: ['not run: the policies do not load'] }])
})

t.test('no suite found: --json says so with ok false, exit 1 as before', async t => {
  const r = await stepup('test', 'test/fixtures/cli/requests', '--json')
  t.equal(r.code, 1)
  t.match(r.err, /no test suites \(\*\.test\.yaml\) under test\/fixtures\/cli\/requests/)
  t.match(JSON.parse(r.out), { ok: false, suites: [], totals: { suites: 0, cases: 0, passed: 0, failed: 0 } })
})

t.test('a single suite file runs only that suite', async t => {
  const { text, report } = await both(t, 'policies/examples.test.yaml')
  t.equal(text.code, 0, text.out)
  t.same(report.suites.map(s => s.file), ['policies/examples.test.yaml'])
  t.equal(text.lines[0], 'policies/examples.test.yaml: example policies', 'the only suite header')
  t.equal(text.lines.filter(l => !l.startsWith(' ') && l.includes('.test.yaml')).length, 1)

  // in a folder with three suites, the file alone runs its six cases, not the folder's eight
  const one = await both(t, 'test/fixtures/cli/valid/valid.test.yaml', '--coverage')
  t.equal(one.text.code, 0, one.text.out)
  t.match(one.report, { path: 'test/fixtures/cli/valid/valid.test.yaml', totals: { suites: 1, cases: 6, passed: 6, failed: 0 } })
  t.same(one.report.coverage!.map(c => c.set), ['test/fixtures/cli/valid'], 'the folder it is in is the folder being tested')

  // a suite with policiesDir or inline policies still finds them
  const byDir = await stepup('test', 'test/fixtures/cli/valid/suites/by-dir.test.yaml')
  t.same([byDir.code, byDir.lines.at(-1)], [0, '1 passed, 0 failed'])

  // a suite in a subfolder of the policies is not run against the subfolder's nothing...
  const nested = await both(t, 'test/fixtures/cli/failing-suite/cases/broken.test.yaml')
  t.equal(nested.json.code, 1)
  t.same(nested.report.suites[0]!.errors, ['cannot load the policies: test/fixtures/cli/failing-suite/cases holds no policies; name the folder being tested with --policies <dir>'])
  t.same(nested.report.totals, { suites: 1, cases: 2, passed: 0, failed: 2 })
  // ...but with --policies naming the folder, as the folder run does: exit 1 for its wrong case
  const named = await both(t, 'test/fixtures/cli/failing-suite/cases/broken.test.yaml', '--policies', 'test/fixtures/cli/failing-suite')
  t.same(named.report.totals, { suites: 1, cases: 2, passed: 1, failed: 1 })
  t.same(named.report.suites[0]!.cases.map(c => c.ok), [true, false])
})

t.test('a missing or wrong file: one clean line, exit 2, nothing on stdout', async t => {
  for (const argv of [
    ['test', 'policies/no-such.test.yaml'],
    ['test', 'policies/no-such.test.yaml', '--json'],
    ['test', 'no/such/folder', '--json']
  ]) {
    const r = await stepup(...argv)
    t.equal(r.code, 2, argv.join(' '))
    t.equal(r.out, '')
    t.match(r.err, new RegExp(`^stepup test: cannot read ${argv[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`))
    t.notMatch(r.err, /\n\s+at /, 'no stack trace')
    t.equal(r.err.split('\n').length, 1)
  }
  const noPolicies = await stepup('test', 'policies/examples.test.yaml', '--policies', 'no/such/folder')
  t.same([noPolicies.code, noPolicies.out, noPolicies.err], [2, '', 'stepup test: --policies: no/such/folder is not a readable folder'])
  const notASuite = await stepup('test', 'policies/payments.yaml')
  t.equal(notASuite.code, 2)
  t.match(notASuite.err, /^stepup test: policies\/payments\.yaml is not a test suite \(\*\.test\.yaml\)/)
  t.equal(notASuite.out, '')
})

t.test('stepup test --help mentions --json and the single file', async t => {
  const [help, helpTopic, usage] = await Promise.all([stepup('test', '--help'), stepup('help', 'test'), stepup('--help')])
  t.equal(help.code, 0)
  t.match(help.out, /^Usage: stepup test \[dir \| file\.test\.yaml\] \[--coverage\] \[--json\] \[--policies <dir>\]/)
  t.match(help.out, /\n {2}--json +One JSON document/)
  t.equal(helpTopic.out, help.out)
  t.match(usage.out, /test \[dir\] +Run the policy test suites .*or one suite file\.\n {4}--coverage .*\n {4}--json /)
})

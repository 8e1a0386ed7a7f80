// The `stepup` command on the fixture folders in test/fixtures/cli: exit codes and output lines.
// The commands run in-process through run(argv, io), the function src/cli/main.ts calls; a few
// run as real processes (node src/cli/main.ts, under the tests' own loader) to prove that wiring: the exit
// code, stdout, stderr and stdin.
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import t from 'tap'
import { run } from '../../src/cli/run.js'
import { TS_CHILD_ARGS } from '../helpers/child.js'

const root = resolve(import.meta.dirname, '../..')
const fixtures = 'test/fixtures/cli'
process.chdir(root) // the paths shown are relative to the working directory
delete process.env.GEOIP_CITY_DB

interface Run { code: number | null, stdout: string, stderr: string, lines: string[] }

/** Runs `stepup <args>` in-process from the repository root; stdout and stderr as the process writes them. */
async function stepup (args: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await run(args, { out: line => { stdout += line + '\n' }, err: line => { stderr += line + '\n' } })
  return { code, stdout, stderr, lines: stdout.split('\n').filter(l => l !== '') }
}

const env = { ...process.env }

/** Runs `stepup <args>` as a real process from the repository root. */
function stepupProcess (args: string[], stdin?: string): Promise<Run> {
  return new Promise<Run>((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...TS_CHILD_ARGS, 'src/cli/main.ts', ...args], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', reject)
    child.on('close', code => resolvePromise({ code, stdout, stderr, lines: stdout.split('\n').filter(l => l !== '') }))
    child.stdin.end(stdin ?? '')
  })
}

t.test('as a real process: stdin, the exit code, stdout and stderr', async t => {
  const [stdin, unknown] = await Promise.all([
    stepupProcess(['decide', '--input', '-', '--policies', `${fixtures}/valid`, '--json'], JSON.stringify({ action: 'profile.read', subject: { id: 'u' } })),
    stepupProcess(['deploy'])
  ])
  t.equal(stdin.code, 0, stdin.stderr)
  t.match(JSON.parse(stdin.stdout), { decision: 'allow', reasons: [] }, '--input - reads stdin')
  t.equal(stdin.stderr, '')
  t.equal(unknown.code, 2, 'the exit code run() returns')
  t.match(unknown.stderr, /^stepup: unknown command "deploy"\nUsage: stepup/)
  t.equal(unknown.stdout, '')
})

t.test('stepup check', async t => {
  const [valid, invalid, warnings, missing, usage] = await Promise.all([
    stepup(['check', `${fixtures}/valid`]),
    stepup(['check', `${fixtures}/invalid`]),
    stepup(['check', `${fixtures}/warnings`]),
    stepup(['check', `${fixtures}/no-such-folder`]),
    stepup(['check', 'a', 'b'])
  ])

  t.test('a valid folder: exit 0', async t => {
    t.equal(valid.code, 0, valid.stderr)
    t.equal(valid.lines.length, 1)
    t.match(valid.lines[0], /^test\/fixtures\/cli\/valid: ok \(5 policies in 1 file, 1 list; 0 warnings\) revision sha256:[0-9a-f]{16}$/, 'the counts and the revision decisions carry')
  })

  t.test('an invalid folder: every error as file:line:col field: error: problem, errors first, exit 1', async t => {
    t.equal(invalid.code, 1)
    t.same(invalid.lines, [
      'test/fixtures/cli/invalid/account.yaml:3:16 policies[0].overrides: error: no policy with id "no-such-policy"',
      'test/fixtures/cli/invalid/payments.yaml:5:33 policies[0].require.factors: error: no factor class can meet aal 3 with factors [totp]: nobody could ever step up',
      'test/fixtures/cli/invalid/payments.yaml:6:9 policies[1].id: error: duplicate id "payouts" (first defined at payments.yaml:3)',
      'test/fixtures/cli/invalid/payments.yaml:11:20 policies[2].when[0].condition: error: invalid CEL (at character 17): Unexpected token: EOF',
      'test/fixtures/cli/invalid/payments.yaml:16:26 policies[3].when[0].ipList.lists: error: no list file lists/tor.txt',
      'test/fixtures/cli/invalid/payments.yaml:20:5 policies[4].requires: error: unknown field; expected one of: id, description, scope, overrides, actions, when, effect, require, exemptions, lockout, message, mode',
      'test/fixtures/cli/invalid/account.yaml:7:20 policies[0].when[0].condition: warning: reads context.country without has(): when a request omits it, the condition errors and fires the policy (fail closed); guard it: has(context.country) && …',
      'test/fixtures/cli/invalid: 6 errors, 1 warning: the server would refuse this folder'
    ])
  })

  t.test('warnings in the same form never fail: exit 0', async t => {
    t.equal(warnings.code, 0, warnings.stderr)
    const file = 'test/fixtures/cli/warnings/policies.yaml'
    t.match(warnings.lines, [
      `${file}:10:16 policies[1].overrides: warning: never takes effect: this policy applies to tenant beta, "acme-exports" (policies.yaml:4) only to tenant acme; no request is inside both`,
      `${file}:15:5 policies[2]: warning: never applies: "admin-everything" (policies.yaml:18, everywhere) overrides it for every action and scope it has; remove it or narrow the override`,
      `${file}:29:33 policies[5].require.factors: warning: cannot be met together with "wires-hardware" (policies.yaml:24): both apply to payments.wire and their factors [security_key, smart_card] and [totp, sms] have no class in common; when both fire the request is denied (unmet_authentication_requirements)`,
      `${file}:29:33 policies[5].require.factors: warning: no configured acr value expresses this requirement (aal 2, factors [totp, sms]): its challenge asks for [http://idmanagement.gov/ns/assurance/aal/2], which do not prove that one of these classes was used, so a session that already holds one of them is denied (unmet_authentication_requirements) instead of stepped up; map an acr value that proves one of them (assurance.acr: { aal, proves }) and list it in assurance.challengeAcr`,
      `${file}:35:44 policies[6].when[0].impossibleTravel.minDistanceKm: warning: never fires: no two places on Earth are more than 20,015 km apart, so every move is under minDistanceKm 25000`,
      `${file}:36:26 policies[6].when[1].ipList.lists: warning: never fires: lists/empty.txt holds no address`,
      `${file}:43:20 policies[7].when[0].condition: warning: reads context.amount without has(): when a request omits it, the condition errors and fires the policy (fail closed); guard it: has(context.amount) && …`,
      'test/fixtures/cli/warnings: ok (8 policies in 1 file, 1 list; 7 warnings)'
    ])
    t.equal(warnings.lines.length, 8)
  })

  t.test('an unreadable folder or a bad argument: exit 2 with a message', async t => {
    t.equal(missing.code, 2)
    t.match(missing.stderr, /^stepup check: cannot read the policy folder test\/fixtures\/cli\/no-such-folder: ENOENT/)
    t.equal(usage.code, 2)
    t.match(usage.stderr, /stepup check: unexpected argument "b"\nRun "stepup --help" for usage\./)
  })
})

t.test('stepup test', async t => {
  const [valid, failing, broken, none, examples, refused] = await Promise.all([
    stepup(['test', `${fixtures}/valid`, '--coverage']),
    stepup(['test', `${fixtures}/failing-suite`]),
    stepup(['test', `${fixtures}/invalid`]),
    stepup(['test', `${fixtures}/requests`]),
    stepup(['test', '--coverage']),
    stepup(['test', `${fixtures}/invalid-requests`])
  ])

  t.test('a case whose request POST /decide would refuse fails, naming the field as the 400 does', async t => {
    t.equal(refused.code, 1)
    t.same(refused.lines, [
      'test/fixtures/cli/invalid-requests/requests.test.yaml: requests the service refuses',
      '  FAIL  an action with an empty segment',
      '          invalid request (POST /decide would answer 400 invalid_request): action: must be 1-200 characters of A-Z a-z 0-9 . : / - with non-empty segments between dots',
      '  FAIL  a field the contract does not have',
      '          invalid request (POST /decide would answer 400 invalid_request): user: unknown field',
      '  FAIL  an address that is not one',
      '          invalid request (POST /decide would answer 400 invalid_request): ip: must be an IPv4 or IPv6 address',
      '  FAIL  amr as one string',
      '          invalid request (POST /decide would answer 400 invalid_request): claims.amr: must be an array',
      '  ok    a case may expect the refusal itself',
      '1 passed, 4 failed'
    ])
  })

  t.test('passing suites, found recursively, with coverage: exit 0', async t => {
    t.equal(valid.code, 0, valid.stderr)
    t.same(valid.lines, [
      'test/fixtures/cli/valid/suites/by-dir.test.yaml',
      '  ok    policiesDir points at the fixture folder',
      'test/fixtures/cli/valid/suites/inline.test.yaml',
      '  ok    inline policies apply',
      'test/fixtures/cli/valid/valid.test.yaml: valid fixture',
      '  ok    small payout is allowed',
      '  ok    large payout steps up to a security key',
      '  ok    an unknown device steps up',
      '  ok    a known device is not asked again',
      '  ok    blocked network is denied',
      '  ok    the desk override replaces the tenant policy',
      'coverage of test/fixtures/cli/valid: 5/5 policies fired, 5/6 triggers',
      '  not fired: trigger new-device when[1] condition has(context.risky) && context.risky == true (policies.yaml:9)',
      'coverage of test/fixtures/cli/valid/suites/inline.test.yaml (inline policies): 1/1 policies fired, 1/1 triggers',
      '8 passed, 0 failed'
    ])
  })

  t.test('a failing case: FAIL, the diff indented, the count, exit 1', async t => {
    t.equal(failing.code, 1)
    t.same(failing.lines, [
      'test/fixtures/cli/failing-suite/cases/broken.test.yaml',
      '  ok    a fresh AAL 2 session exports',
      '  FAIL  this expectation is wrong on purpose',
      '          decision: expected "allow", got "step_up"',
      '          reasons: expected 0 item(s), got 1: [{"policy":"exports","trigger":"always","outcome":"step_up","unmet":["aal"]}]',
      '1 passed, 1 failed'
    ])
  })

  t.test('a suite whose policies do not validate fails every case and says why', async t => {
    t.equal(broken.code, 1)
    t.equal(broken.lines[1], '  the policies do not validate:')
    t.ok(broken.lines.includes('    test/fixtures/cli/invalid/payments.yaml:5:33 policies[0].require.factors: error: no factor class can meet aal 3 with factors [totp]: nobody could ever step up'))
    t.same(broken.lines.slice(-3), ['  FAIL  never runs', '          not run: the policies do not load', '0 passed, 1 failed'])
  })

  t.test('no suite at all is a failure', async t => {
    t.equal(none.code, 1)
    t.match(none.stderr, /no test suites \(\*\.test\.yaml\) under test\/fixtures\/cli\/requests/)
    t.equal(none.lines.at(-1), '0 passed, 0 failed')
  })

  t.test('the shipped suite for the example policies passes (default folder ./policies), every policy and trigger fired', async t => {
    t.equal(examples.code, 0, examples.stdout)
    const m = /^(\d+) passed, 0 failed$/.exec(examples.lines.at(-1) ?? '')
    t.ok(m && Number(m[1]) >= 15, examples.lines.at(-1) ?? '(no output)')
    t.notOk(examples.stdout.includes('FAIL'))
    t.ok(examples.lines.includes('coverage of policies: 16/16 policies fired, 16/16 triggers'), examples.lines.slice(-3).join('\n'))
  })
})

t.test('stepup decide', async t => {
  const decide = (input: string, ...more: string[]): Promise<Run> =>
    stepup(['decide', '--input', `${fixtures}/requests/${input}`, '--policies', `${fixtures}/valid`, '--now', '2026-11-22T12:00:00Z', ...more])
  const [payout, json, blocked, desk, checked] = await Promise.all([
    decide('payout.json'),
    decide('payout.json', '--json'),
    decide('blocked.json'),
    decide('desk.json'),
    stepup(['check', `${fixtures}/valid`])
  ])
  const explained = (input: string): Promise<Run> =>
    stepup(['decide', '--input', `${fixtures}/requests/${input}`, '--policies', `${fixtures}/explain`, '--now', '2026-11-22T12:00:00Z'])
  const [transfer, failedCondition] = await Promise.all([explained('transfer.json'), explained('transfer-no-amount.json')])

  t.test('the explanation reads the trace: report-only triggers, the merge', async t => {
    t.equal(transfer.code, 0, transfer.stderr)
    const from = transfer.lines.indexOf('Triggers')
    t.same(transfer.lines.slice(from), [
      'Triggers',
      '  transfers',
      '    FIRED      condition context.amount > 100 -> step_up: the session lacks aal, factor',
      '    FIRED      newDevice { days: 30 } -> step_up: the session lacks aal, factor',
      '               no device fingerprint: counts as a new device',
      '               device: null',
      '               lastSeen: never',
      '  large-transfers',
      '    FIRED      condition has(context.amount) && context.amount > 1000 -> step_up: the session lacks aal, factor',
      '  watch-transfers (report-only: never changes the decision)',
      '    FIRED      always -> would step_up',
      'Why',
      '  Not satisfied by the session: transfers (lacks aal, factor); large-transfers (lacks aal, factor).',
      '  Merged transfers, large-transfers: aal 2 (the highest), factors [security_key, passkey] (every restriction at once), maxAge 5m (the smallest).',
      '  Required: AAL 2 with security_key or passkey, authenticated within 5m; acr_values: phr http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true',
      '  message: Additional authentication is required.',
      '  challenge: HTTP 401',
      '    WWW-Authenticate: Bearer error="insufficient_user_authentication", error_description="Additional authentication is required.", acr_values="phr http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true", max_age=300'
    ])
  })

  t.test('a trigger that failed closed is shown as ERROR with why', async t => {
    t.equal(failedCondition.code, 0, failedCondition.stderr)
    t.ok(failedCondition.lines.includes('    ERROR      condition context.amount > 100 -> satisfied'))
    t.ok(failedCondition.lines.includes('               context.amount > 100: No such key: amount (an error fails closed)'))
    t.ok(failedCondition.lines.includes('    not fired  condition has(context.amount) && context.amount > 1000'))
  })

  t.test('a step-up, explained', async t => {
    t.equal(payout.code, 0, payout.stderr)
    t.match(payout.lines[0], /^Decision: STEP UP \(auth\.step_up_initiated\) {2}decisionId [0-9a-f-]{36}$/)
    for (const line of [
      '  ip       62.252.0.1: Bromley, GB (51.4048, 0.0098; accuracy 5 km)',
      '  AAL      2',
      '  factors  totp, password',
      '  authAge  10m (auth_time 2026-11-22T11:50:00Z)',
      'Policies for payments.payout here: 2 apply',
      '  big-payouts       enforce  global  step_up aal 3, factors [security_key, smart_card], maxAge 5m  policies.yaml:2',
      '    FIRED      condition has(context.amount) && context.amount > 1000 -> step_up: the session lacks aal, factor, freshness',
      '    not fired  ipList { lists: [blocked] }',
      '  Required: AAL 3 with security_key, authenticated within 5m; acr_values: phrh http://idmanagement.gov/ns/assurance/aal/3',
      '  challenge: HTTP 401',
      '    WWW-Authenticate: Bearer error="insufficient_user_authentication", error_description="Confirm with your security key.", acr_values="phrh http://idmanagement.gov/ns/assurance/aal/3", max_age=300'
    ]) t.ok(payout.lines.includes(line), line)
  })

  t.test('--json prints the body POST /decide answers', async t => {
    t.equal(json.code, 0, json.stderr)
    const body = JSON.parse(json.stdout) as Record<string, unknown>
    t.same(Object.keys(body), ['decision', 'decisionId', 'policyRevision', 'required', 'challenge', 'message', 'reasons', 'session', 'reportOnly'])
    t.match(body.policyRevision, /^sha256:[0-9a-f]{16}$/)
    t.ok(checked.lines[0]!.endsWith(`revision ${String(body.policyRevision)}`), 'the revision stepup check prints for the same folder')
    t.ok(payout.lines.includes(`  policy   revision ${String(body.policyRevision)}`), 'and the explanation')
    t.match(body, {
      decision: 'step_up',
      required: { aal: 3, factors: ['security_key'], maxAge: 300, acrValues: ['phrh', 'http://idmanagement.gov/ns/assurance/aal/3'] },
      challenge: { status: 401 },
      reasons: [{ policy: 'big-payouts', trigger: 'condition', outcome: 'step_up', unmet: ['aal', 'factor', 'freshness'] }],
      session: { aal: 2, authAge: 600, factors: ['totp', 'password'] },
      reportOnly: []
    })
  })

  t.test('a deny, with the trigger figures', async t => {
    t.equal(blocked.code, 0)
    t.equal(blocked.lines[0]!.slice(0, 38), 'Decision: DENY (auth.access_denied)  d')
    t.ok(blocked.lines.includes('    FIRED      ipList { lists: [blocked] } -> deny'))
    t.ok(blocked.lines.includes('               192.0.2.10 is in blocked'))
    t.ok(blocked.lines.includes('  Denied by blocked-networks (effect: deny); deny beats step_up.'))
    t.ok(blocked.lines.includes('  challenge: HTTP 403 (no WWW-Authenticate header)'))
  })

  t.test('overridden policies and a once-only authentication', async t => {
    t.equal(desk.code, 0)
    t.match(desk.lines[0], /^Decision: ALLOW \(auth\.step_up_skipped\)/)
    t.ok(desk.lines.includes('Policies for reports.export here: 2 apply, 1 overridden'))
    t.ok(desk.lines.includes('  acme-exports (policies.yaml:23) is overridden by acme-exports-desk'))
    t.ok(desk.lines.includes('  This allow uses up the authentication of 2026-11-22T11:59:50Z (maxAge 0: once only).'))
  })

  t.test('bad input: exit 2 and a message naming the field', async t => {
    const cases: Array<[string, RegExp]> = [
      ['bad-ip.json', /bad-ip\.json: ip: must be an IPv4 or IPv6 address$/],
      ['unknown-field.json', /unknown-field\.json: user: unknown field$/],
      ['no-subject.json', /no-subject\.json: subject\.id: required \(or claims\.sub\)$/],
      ['risk-score.json', /risk-score\.json: context\.riskScore: must be <= 1$/],
      ['not-json.json', /not-json\.json: not valid JSON/],
      ['missing.json', /--input: cannot read test\/fixtures\/cli\/requests\/missing\.json/]
    ]
    const runs = await Promise.all(cases.map(([file]) => decide(file)))
    runs.forEach((r, i) => {
      t.equal(r.code, 2, cases[i]![0])
      t.equal(r.stdout, '')
      t.match(r.stderr.trim(), cases[i]![1])
      t.match(r.stderr, /^stepup decide: /)
    })
  })

  t.test('options: --input is required, --now must be a time, policies must validate', async t => {
    const [noInput, badNow, badPolicies] = await Promise.all([
      stepup(['decide']),
      decide('blocked.json', '--now', 'yesterday'),
      stepup(['decide', '--input', `${fixtures}/requests/blocked.json`, '--policies', `${fixtures}/invalid`])
    ])
    t.equal(noInput.code, 2)
    t.match(noInput.stderr, /stepup decide: --input <file> is required/)
    t.equal(badNow.code, 2)
    t.match(badNow.stderr, /stepup decide: --now: not an ISO 8601 time: yesterday/)
    t.equal(badPolicies.code, 2)
    t.match(badPolicies.stderr, /the policies in test\/fixtures\/cli\/invalid do not validate/)
    t.match(badPolicies.stderr, /test\/fixtures\/cli\/invalid\/payments\.yaml:5:33 policies\[0\]\.require\.factors: error: /)
  })
})

t.test('usage', async t => {
  const [help, unknown, nothing, subHelp] = await Promise.all([
    stepup(['--help']),
    stepup(['deploy']),
    stepup([]),
    stepup(['test', '--help'])
  ])
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: stepup <command> \[options\]/)
  t.match(help.stdout, /check \[dir\]/)
  t.match(help.stdout, /test \[dir\]/)
  t.match(help.stdout, /decide --input <file>/)
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /^stepup: unknown command "deploy"\nUsage: stepup/)
  t.equal(unknown.stdout, '')
  t.equal(nothing.code, 2)
  t.match(nothing.stderr, /^stepup: a command is required\nUsage: stepup/)
  t.equal(subHelp.code, 0)
  t.match(subHelp.stdout, /^Usage: stepup/)
})

// stepup diff: one case per kind of change.
import t from 'tap'
import { compilePolicies } from '../../src/policy/compile.js'
import { diffSets, type PolicyChange } from '../../src/policy/semantic-diff.js'

const set = (body: string, extra = '') => {
  const r = compilePolicies({ policies: [{ file: 'p.yaml', text: `policies:\n  - id: guard\n${body}${extra}` }], lists: [] })
  if (!r.set) throw new Error(r.problems.map(p => p.message).join('; '))
  return r.set
}
const BASE = '    actions: [payments.payout, payments.refund]\n    when:\n      - condition: context.amount > 100\n      - newDevice: { days: 30 }\n    require: { aal: 2, factors: [security_key, passkey], maxAge: 15m }\n'
const line = (c: PolicyChange): string => `${c.kind} ${c.file}:${c.line} ${c.id}: ${c.what}`
const diff = (before: string, after: string, extraBefore = '', extraAfter = ''): string[] => diffSets(set(before, extraBefore), set(after, extraAfter)).map(line)

t.test('lower and higher aal', async t => {
  t.same(diff(BASE, BASE.replace('aal: 2', 'aal: 1')), ['loosened p.yaml:2 guard: aal 2 -> 1'])
  const aal3 = BASE.replace('aal: 2, factors: [security_key, passkey]', 'aal: 3, factors: [security_key]')
  t.same(diff(BASE, aal3), ['tightened p.yaml:2 guard: aal 2 -> 3', 'tightened p.yaml:2 guard: factors [security_key, passkey] -> [security_key]'])
})

t.test('longer and shorter maxAge', async t => {
  t.same(diff(BASE, BASE.replace('15m', '1h')), ['loosened p.yaml:2 guard: maxAge 15m -> 1h'])
  t.same(diff(BASE, BASE.replace('15m', '0')), ['tightened p.yaml:2 guard: maxAge 15m -> 0s'])
})

t.test('wider, narrower, any and different factors', async t => {
  t.same(diff(BASE, BASE.replace('[security_key, passkey]', '[security_key, passkey, totp]')), ['loosened p.yaml:2 guard: factors [security_key, passkey] -> [security_key, passkey, totp]'])
  t.same(diff(BASE, BASE.replace('factors: [security_key, passkey], ', '')), ['loosened p.yaml:2 guard: factors [security_key, passkey] -> any factor'])
  t.same(diff(BASE, BASE.replace('[security_key, passkey]', '[passkey]')), ['tightened p.yaml:2 guard: factors [security_key, passkey] -> [passkey]'])
  t.same(diff(BASE, BASE.replace('[security_key, passkey]', '[passkey, totp]')), ['changed p.yaml:2 guard: factors [security_key, passkey] -> [passkey, totp]'])
})

t.test('fewer and more actions', async t => {
  t.same(diff(BASE, BASE.replace('payments.payout, payments.refund', 'payments.payout')), ['loosened p.yaml:2 guard: actions no longer guarded: payments.refund'])
  t.same(diff(BASE, BASE.replace('payments.refund', 'payments.refund, payments.void')), ['tightened p.yaml:2 guard: actions now guarded: payments.void'])
})

t.test('narrower and wider scope', async t => {
  t.same(diff(BASE, BASE, '', '    scope: { tenant: acme }\n'), ['loosened p.yaml:2 guard: scope.tenant (any) -> acme'])
  t.same(diff(BASE, BASE, '    scope: { application: web }\n', ''), ['tightened p.yaml:2 guard: scope.application web -> (any)'])
})

t.test('enforce -> report and back; step_up <-> deny', async t => {
  t.same(diff(BASE, BASE, '', '    mode: report\n'), ['loosened p.yaml:2 guard: mode enforce -> report'])
  t.same(diff(BASE, BASE, '    mode: report\n', ''), ['tightened p.yaml:2 guard: mode report -> enforce'])
  const deny = '    actions: [payments.payout, payments.refund]\n    effect: deny\n'
  t.same(diff(deny, BASE.replace(/ {4}when:\n.*\n.*\n/, '')), ['loosened p.yaml:2 guard: effect deny -> step_up'])
})

t.test('triggers removed, added, always', async t => {
  t.same(diff(BASE, BASE.replace('      - newDevice: { days: 30 }\n', '')), ['loosened p.yaml:2 guard: trigger removed: newDevice {"days":30}'])
  t.match(diff(BASE, BASE.replace('      - newDevice: { days: 30 }\n', '      - newDevice: { days: 30 }\n      - newCountry: { days: 30 }\n')), [/^tightened p\.yaml:2 guard: trigger added: newCountry \{"days":30/])
  const always = BASE.replace(/ {4}when:\n.*\n.*\n/, '')
  t.same(diff(always, BASE), ['loosened p.yaml:2 guard: fires only when condition context.amount > 100 or newDevice {"days":30} (was: always)'])
  t.same(diff(BASE, always), ['tightened p.yaml:2 guard: fires always (was: condition context.amount > 100 or newDevice {"days":30})'])
})

t.test('added and removed policies, with their file and line', async t => {
  const two = set(BASE, '  - id: second\n    actions: [x.y]\n')
  t.same(diffSets(set(BASE), two).map(line), ['added p.yaml:8 second: step_up aal 2 on x.y'])
  t.same(diffSets(two, set(BASE)).map(line), ['removed p.yaml:8 second: was step_up aal 2 on x.y'])
  t.same(diffSets(two, two), [], 'no change, no line')
})

t.test('payments: dynamic linking, exemptions and lockout changes are named', async t => {
  const PAY = '    actions: [payments.initiate]\n    require: { aal: 2, bind: transaction, maxAge: 5m }\n'
  t.same(diff(PAY, PAY.replace(', bind: transaction', '')), [
    'loosened p.yaml:2 guard: require.bind: transaction removed',
    'loosened p.yaml:2 guard: lockout {"attempts":5,"window":900} -> null'
  ])
  t.same(diff(PAY, PAY, '', '    exemptions: { lowValue: true, trustedBeneficiary: true }\n'), [
    'loosened p.yaml:2 guard: exemptions.lowValue null -> {"maxAmount":3000,"maxCount":5,"maxTotal":10000}',
    'loosened p.yaml:2 guard: exemptions.trustedBeneficiary false -> true'
  ])
  t.same(diff(PAY, PAY, '    exemptions: { tra: { maxAmount: 250, riskScoreBelow: 0.2 } }\n', ''), ['tightened p.yaml:2 guard: exemptions.tra {"maxAmount":25000,"riskScoreBelow":0.2} -> null'])
  t.same(diff(PAY, PAY, '', '    lockout: { attempts: 3 }\n'), ['changed p.yaml:2 guard: lockout {"attempts":5,"window":900} -> {"attempts":3,"window":900}'])
})

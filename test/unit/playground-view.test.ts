// The playground's views of a decision: the trace tree (from the engine trace's shape, here a
// hand-made trace), the reasons tree when no trace is given, and the client's answer.
import t from 'tap'
import { clientAnswer } from '../../src/playground/client-view.js'
import { formatDuration, reasonsTree, traceTree, type DecisionTrace, type TreeNode } from '../../src/playground/trace-tree.js'

const trace: DecisionTrace = {
  policies: [
    {
      policy: 'large-payouts',
      file: 'payments.yaml',
      line: 5,
      mode: 'enforce',
      triggers: [{ kind: 'condition', status: 'fired', detail: 'context.amount > 1000' }],
      outcome: 'step_up',
      unmet: ['aal', 'factor']
    },
    {
      policy: 'travel',
      file: 'risk.yaml',
      line: 22,
      mode: 'enforce',
      triggers: [
        { kind: 'newCountry', status: 'not_fired' },
        {
          kind: 'impossibleTravel',
          status: 'fired',
          detail: 'Bromley, GB -> Singapore, SG: 10,870 km in 2 min',
          figures: { distanceKm: 10870, elapsedSeconds: 120, speedKmh: 325650, from: { country: 'GB' } }
        }
      ],
      outcome: 'satisfied'
    },
    { policy: 'acme-treasury', file: 'tenants/acme.yaml', line: 7, mode: 'enforce', overriddenBy: 'acme-desk', triggers: [], outcome: 'overridden' },
    { policy: 'role-grants', file: 'admin.yaml', line: 14, mode: 'report', triggers: [{ kind: 'condition', status: 'error', detail: 'no such key: amount' }], outcome: 'step_up' }
  ],
  merge: { aal: 3, factors: ['security_key'], maxAge: 300, onceOnly: false, policies: ['large-payouts', 'travel'] }
}

const labels = (nodes: TreeNode[]): string[] => nodes.flatMap(n => [n.label, ...labels(n.children ?? []).map(l => '  ' + l)])

t.test('a trace becomes one node per policy, its triggers with figures, and the merge', async t => {
  const tree = traceTree(trace)
  t.same(labels(tree), [
    'large-payouts → step up',
    '  condition: fired',
    '  unmet: assurance level too low; no allowed factor proven',
    'travel → satisfied',
    '  newCountry: not fired',
    '  impossibleTravel: fired',
    '    distanceKm: 10870',
    '    elapsedSeconds: 120',
    '    speedKmh: 325650',
    '    from: {"country":"GB"}',
    'acme-treasury → overridden',
    '  overridden by acme-desk',
    'role-grants (report only) → step up',
    '  condition: error',
    'merged requirement: AAL 3, factors security_key, max age 5 min',
    '  from large-payouts, travel'
  ])
  t.equal(tree[0]!.detail, 'payments.yaml:5', 'where the policy is')
  t.equal(tree[1]!.children![1]!.detail, 'Bromley, GB -> Singapore, SG: 10,870 km in 2 min')
  t.equal(tree[1]!.children![1]!.status, 'fired')
  t.equal(tree[1]!.children![0]!.status, 'not_fired')
})

t.test('the merge says once-only and scopes when they apply', async t => {
  const [merge] = traceTree({ policies: [], merge: { aal: 2, factors: null, maxAge: 0, onceOnly: true, scopes: ['payments:high'], policies: ['desk'] } })
  t.equal(merge!.label, 'merged requirement: AAL 2, any factor, max age 0 s (every time), once-only, scopes payments:high')
  const [empty] = traceTree({ policies: [], merge: { aal: 3, factors: [], maxAge: 300, onceOnly: false, policies: ['a', 'b'] } })
  t.equal(empty!.label, 'merged requirement: AAL 3, no factor class in common, max age 5 min', 'an empty intersection is not "any"')
})

t.test('without a trace, the reasons are grouped by policy', async t => {
  const tree = reasonsTree([
    { policy: 'travel', trigger: 'newCountry', outcome: 'step_up', detail: 'country SG never seen', figures: { country: 'SG', lastSeen: null }, unmet: ['freshness'] },
    { policy: 'travel', trigger: 'impossibleTravel', outcome: 'step_up', detail: 'too fast', unmet: ['freshness'] },
    { policy: 'blocked', trigger: 'ipList', outcome: 'deny' }
  ], [{ policy: 'grants', decision: 'step_up', trigger: 'always' }])
  t.same(labels(tree), [
    'travel → step up',
    '  newCountry: fired',
    '    country: SG',
    '    lastSeen: none',
    '  impossibleTravel: fired',
    '  unmet: authenticated too long ago',
    'blocked → deny',
    '  ipList: fired',
    'grants (report only) → would step up',
    '  always: fired'
  ])
  t.same(labels(reasonsTree([])), ['no policy fired'])
})

t.test('durations read as people say them', async t => {
  t.same([0, 45, 300, 3600, 86400 * 2].map(formatDuration), ['0 s (every time)', '45 s', '5 min', '1 h', '2 d'])
})

t.test('the client sees the challenge as the gateway forwards it', async t => {
  const header = 'Bearer error="insufficient_user_authentication", acr_values="phrh", max_age=300'
  const stepUp = clientAnswer('id-1', { decision: 'step_up', challenge: { status: 401, wwwAuthenticate: header }, message: 'Use your key.', required: { aal: 3 } })
  t.same({ status: stepUp.status, headers: stepUp.headers, body: stepUp.body }, {
    status: 401,
    headers: { 'WWW-Authenticate': header },
    body: { error: 'insufficient_user_authentication', message: 'Use your key.', decisionId: 'id-1', required: { aal: 3 } }
  })
  const unmet = clientAnswer('id-2', { decision: 'deny', challenge: { status: 403, wwwAuthenticate: 'Bearer error="unmet_authentication_requirements"' }, enroll: ['security_key'] })
  t.equal(unmet.status, 403)
  t.match(unmet.body, { error: 'unmet_authentication_requirements', enroll: ['security_key'] })
  t.match(unmet.meaning, /not retry/)
  const deny = clientAnswer('id-3', { decision: 'deny', challenge: { status: 403 }, message: 'Blocked.' })
  t.same(deny.headers, {})
  t.match(deny.body, { error: 'access_denied', message: 'Blocked.' })
  const allow = clientAnswer('id-4', { decision: 'allow' })
  t.equal(allow.status, 200)
  t.equal(allow.body, undefined)
})

import t from 'tap'
import type { PolicyProblem } from '../../src/errors.js'
import { compileIpLists } from '../../src/policy/iplists.js'

const compile = (lists: Record<string, string>): { matcher: ReturnType<typeof compileIpLists>, problems: PolicyProblem[] } => {
  const problems: PolicyProblem[] = []
  const matcher = compileIpLists(Object.entries(lists).map(([name, text]) => ({ name, file: `lists/${name}.txt`, text })), problems)
  return { matcher, problems }
}

t.test('IPv4 and IPv6 addresses and CIDRs match; comments are ignored', async t => {
  const { matcher, problems } = compile({ threats: '# bad\n192.0.2.0/24\n198.51.100.7 # one host\n2001:db8:bad::/48\n', tor: '203.0.113.9\n' })
  t.same(problems, [])
  t.same(matcher.lookup('192.0.2.200'), ['threats'])
  t.same(matcher.lookup('198.51.100.7'), ['threats'])
  t.same(matcher.lookup('198.51.100.8'), [])
  t.same(matcher.lookup('2001:db8:bad:1::5'), ['threats'])
  t.same(matcher.lookup('2001:db8:bae::1'), [])
  t.same(matcher.lookup('203.0.113.9'), ['tor'])
})

t.test('an IPv4-mapped IPv6 address cannot dodge an IPv4 list', async t => {
  const { matcher } = compile({ threats: '192.0.2.0/24\n' })
  t.same(matcher.lookup('::ffff:192.0.2.1'), ['threats'])
})

t.test('overlapping and adjacent ranges merge; lookups bisect', async t => {
  const lines = Array.from({ length: 5000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`).join('\n')
  const { matcher } = compile({ big: lines + '\n10.0.0.0/16\n' })
  t.same(matcher.lookup('10.0.5.1'), ['big'])
  t.same(matcher.lookup('10.19.135.1'), ['big'])
  t.same(matcher.lookup('10.200.0.1'), [])
})

t.test('a bad entry is reported with its line', async t => {
  const { problems } = compile({ bad: '192.0.2.1\nnot-an-ip\n' })
  t.equal(problems.length, 1)
  t.match(problems[0], { file: 'lists/bad.txt', line: 2, message: /not an IPv4\/IPv6 address or CIDR/ })
})

t.test('invalid addresses are in no list', async t => {
  const { matcher } = compile({ all: '0.0.0.0/0\n::/0\n' })
  t.same(matcher.lookup('nonsense'), [])
  t.same(matcher.lookup('8.8.8.8'), ['all'])
})

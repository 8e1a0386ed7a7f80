// Every IPv6 spelling that carries an IPv4 address is read back to it before IP-list and geo
// lookups, so a list of 192.0.2.0/24 cannot be dodged by writing the address another way.
import t from 'tap'
import type { PolicyProblem } from '../../src/errors.js'
import { compileIpLists } from '../../src/policy/iplists.js'
import { clientAddress } from '../../src/signals/ip.js'
import { openGeoLookup } from '../../src/signals/geo.js'

/** 192.0.2.10 (c000:020a) in every form; Teredo carries it inverted (3fff:fdf5). */
const FORMS_OF_192_0_2_10: Array<[string, string]> = [
  ['IPv4-mapped, dotted', '::ffff:192.0.2.10'],
  ['IPv4-mapped, hex', '::ffff:c000:20a'],
  ['IPv4-mapped, expanded upper case', '0:0:0:0:0:FFFF:C000:020A'],
  ['IPv4-translated (SIIT)', '::ffff:0:c000:20a'],
  ['IPv4-compatible, dotted', '::192.0.2.10'],
  ['IPv4-compatible, hex', '::c000:20a'],
  ['NAT64 well-known prefix', '64:ff9b::c000:20a'],
  ['NAT64, dotted', '64:ff9b::192.0.2.10'],
  ['6to4', '2002:c000:20a::1'],
  ['6to4, another host and subnet', '2002:c000:020a:1234:5678::9'],
  ['Teredo (client address inverted)', '2001:0:4136:e378:8000:63bf:3fff:fdf5']
]

const lists = (text: string): ReturnType<typeof compileIpLists> => {
  const problems: PolicyProblem[] = []
  const m = compileIpLists([{ name: 'threats', file: 'lists/threats.txt', text }], problems)
  if (problems.length > 0) throw new Error(JSON.stringify(problems))
  return m
}

t.test('each form is read back to its IPv4 address', async t => {
  for (const [name, ip] of FORMS_OF_192_0_2_10) t.equal(clientAddress(ip)?.ipv4, '192.0.2.10', `${name}: ${ip}`)
})

t.test('IPv6 addresses that embed nothing stay IPv6', async t => {
  for (const ip of ['::1', '::', '2001:db8::c000:20a', '2001:db8:bad::1', 'fe80::1', '64:ff9b:1::c000:20a', '2003::c000:20a']) {
    t.equal(clientAddress(ip)?.ipv4, undefined, ip)
  }
  t.equal(clientAddress('not-an-ip'), undefined)
})

t.test('no form dodges an IPv4 list', async t => {
  const m = lists('192.0.2.0/24\n')
  for (const [name, ip] of FORMS_OF_192_0_2_10) t.same(m.lookup(ip), ['threats'], `${name}: ${ip}`)
  t.same(m.lookup('2002:c000:30a::1'), [], '6to4 of 192.0.3.10 is not in 192.0.2.0/24')
  t.same(m.lookup('2001:0:4136:e378:8000:63bf:3fff:fcf5'), [], 'Teredo of 192.0.3.10 is not listed')
  t.same(m.lookup('::1'), [], 'loopback is not 0.0.0.1')
})

t.test('an IPv6 list entry still matches the IPv6 spelling (a list may block 2002::/16)', async t => {
  const m = lists('2002::/16\n2001::/32\n')
  t.same(m.lookup('2002:c000:20a::1'), ['threats'])
  t.same(m.lookup('2001:0:4136:e378:8000:63bf:3fff:fdf5'), ['threats'])
  t.same(m.lookup('192.0.2.10'), [])
})

t.test('geo looks up the IPv4 address each form carries', async t => {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())
  // 62.252.0.1 (3efc:0001) is placed by GeoLite2; the same address in IPv6 forms must be too.
  const expected = geo.lookup('62.252.0.1')
  t.equal(expected.status, 'found', 'the IPv4 address is placed')
  for (const ip of ['::ffff:3efc:1', '::3efc:1', '::ffff:0:3efc:1', '64:ff9b::3efc:1', '2002:3efc:1::1', '2001:0:4136:e378:8000:63bf:c103:fffe']) {
    t.same(geo.lookup(ip), expected, ip)
  }
})

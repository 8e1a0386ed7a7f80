// Through /decide: the example threat list (192.0.2.0/24) denies 192.0.2.10 however it is spelled.
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { buildTestApp, decide, session } from '../helpers/app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())
const { app } = await buildTestApp({ geo })
t.teardown(() => app.close())

const FORMS = [
  '192.0.2.10', '::ffff:192.0.2.10', '::ffff:c000:20a', '::ffff:0:c000:20a', '::192.0.2.10', '::c000:20a',
  '64:ff9b::c000:20a', '2002:c000:20a::1', '2001:0:4136:e378:8000:63bf:3fff:fdf5'
]

t.test('every IPv4-embedding spelling of a listed address is denied', async t => {
  for (const ip of FORMS) {
    const answer = await decide(app, { action: 'profile.read', ...session('user-1', ['pwd', 'hwk']), ip })
    t.equal(answer.decision, 'deny', ip)
    t.ok(answer.reasons.some(r => r.policy === 'threat-list' && r.trigger === 'ipList'), `${ip}: the threat list fired`)
  }
})

t.test('an unlisted address in the same forms is not denied by the list', async t => {
  for (const ip of ['::ffff:c000:30a', '2002:c000:30a::1', '64:ff9b::c000:30a']) {
    const answer = await decide(app, { action: 'profile.read', ...session('user-1', ['pwd', 'hwk']), ip })
    t.notOk(answer.reasons.some(r => r.policy === 'threat-list'), `${ip}: no threat-list reason`)
  }
})

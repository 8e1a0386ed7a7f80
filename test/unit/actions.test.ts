import t from 'tap'
import { ActionIndex, actionMatches, isValidAction } from '../../src/engine/actions.js'

t.test('* matches exactly one segment', async t => {
  t.ok(actionMatches('payments.*', 'payments.payout'))
  t.notOk(actionMatches('payments.*', 'payments'))
  t.notOk(actionMatches('payments.*', 'payments.refund.full'))
})

t.test('** matches one or more segments', async t => {
  t.ok(actionMatches('admin.**', 'admin.users.delete'))
  t.ok(actionMatches('admin.**', 'admin.x'))
  t.notOk(actionMatches('admin.**', 'admin'))
  t.ok(actionMatches('**', 'anything.at.all'))
  t.ok(actionMatches('a.**.delete', 'a.b.c.delete'))
  t.notOk(actionMatches('a.**.delete', 'a.delete'))
})

t.test(':, / and - are ordinary characters', async t => {
  t.ok(actionMatches('api:v1/users.read-all', 'api:v1/users.read-all'))
  t.notOk(actionMatches('api:v1/users.read-all', 'api:v1/users.read'))
})

t.test('the index returns each value once, whatever the number of matching patterns', async t => {
  const index = new ActionIndex<string>()
  index.add('a.*', 'p1')
  index.add('a.**', 'p1')
  index.add('a.b', 'p2')
  index.add('c.d', 'p3')
  t.same(index.match('a.b').sort(), ['p1', 'p2'])
  t.same(index.match('c.d'), ['p3'])
  t.same(index.match('x'), [])
})

t.test('request actions follow the documented grammar', async t => {
  t.ok(isValidAction('payments.payout'))
  t.notOk(isValidAction('a..b'))
  t.notOk(isValidAction('.a'))
  t.notOk(isValidAction('a b'))
  t.notOk(isValidAction('x'.repeat(201)))
})

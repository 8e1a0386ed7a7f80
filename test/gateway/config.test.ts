// The configuration of callers and gateways: named API keys, TRUSTED_PROXIES, DEVICE_HEADER.
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { callerIdentifier, parseKeyEntry } from '../../src/http/auth.js'

const dir = process.cwd()

t.test('defaults', async t => {
  const c = loadConfig({ POLICIES_DIR: dir })
  t.same(c.trustedProxies, ['127.0.0.0/8', '::1/128'])
  t.equal(c.deviceHeader, 'x-device-fingerprint')
})

t.test('TRUSTED_PROXIES and DEVICE_HEADER are validated, naming the variable', async t => {
  t.same(loadConfig({ POLICIES_DIR: dir, TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7, 2001:db8::/32' }).trustedProxies, ['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/32'])
  for (const bad of ['10.0.0.0/33', 'nope', '10.0.0.0/8x', '::1/129']) t.throws(() => loadConfig({ POLICIES_DIR: dir, TRUSTED_PROXIES: bad }), /TRUSTED_PROXIES/)
  t.equal(loadConfig({ POLICIES_DIR: dir, DEVICE_HEADER: 'X-Device-Id' }).deviceHeader, 'x-device-id')
  t.throws(() => loadConfig({ POLICIES_DIR: dir, DEVICE_HEADER: 'bad header' }), /DEVICE_HEADER/)
})

t.test('named keys: name:key, the key part needs 16+ characters', async t => {
  t.same(loadConfig({ POLICIES_DIR: dir, API_KEYS: 'web:0123456789abcdef0123' }).apiKeys, ['web:0123456789abcdef0123'])
  t.throws(() => loadConfig({ POLICIES_DIR: dir, API_KEYS: 'web:short' }), /API_KEYS/)
  t.same(parseKeyEntry('web:0123456789abcdef0123'), { name: 'web', key: '0123456789abcdef0123' })
  t.same(parseKeyEntry('0123456789abcdef0123'), { name: undefined, key: '0123456789abcdef0123' })
  const identify = callerIdentifier(['web:0123456789abcdef0123', 'plain-key-0123456789'])
  t.same(identify('0123456789abcdef0123'), { name: 'web' })
  t.same(identify('plain-key-0123456789'), { name: undefined })
  t.equal(identify('web:0123456789abcdef0123'), undefined, 'the name is not part of the key')
  t.equal(identify(undefined), undefined)
})

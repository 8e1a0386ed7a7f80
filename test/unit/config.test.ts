import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'

const KEY = 'k'.repeat(20)

t.test('defaults serve on loopback with ./policies and in-memory history', async t => {
  const c = loadConfig({})
  t.equal(c.port, 8080)
  t.equal(c.host, '127.0.0.1')
  t.match(c.policiesDir, /policies$/)
  t.equal(c.redisUrl, undefined)
  t.same(c.apiKeys, [])
  t.ok(Object.isFrozen(c))
})

const rejects = (env: Record<string, string>, variable: string, pattern: RegExp): void => {
  t.test(`${variable}=${JSON.stringify(Object.values(env)[0])} is refused, naming ${variable}`, async t => {
    let error: unknown
    try { loadConfig(env) } catch (err) { error = err }
    t.ok(error instanceof ConfigError, 'a ConfigError')
    t.equal((error as ConfigError).variable, variable)
    t.match((error as ConfigError).message, pattern)
  })
}

rejects({ PORT: 'eighty' }, 'PORT', /whole number/)
rejects({ PORT: '70000' }, 'PORT', /65535/)
rejects({ POLICIES_DIR: '/nonexistent/policies' }, 'POLICIES_DIR', /cannot read/)
rejects({ REDIS_URL: 'http://localhost:6379' }, 'REDIS_URL', /redis:\/\//)
rejects({ REDIS_URL: 'not a url' }, 'REDIS_URL', /not a URL/)
rejects({ REDIS_CLUSTER_NODES: 'a:1,b' }, 'REDIS_CLUSTER_NODES', /host:port/)
rejects({ REDIS_URL: 'redis://a:1', REDIS_CLUSTER_NODES: 'a:1' } as Record<string, string>, 'REDIS_CLUSTER_NODES', /not both/)
rejects({ GEOIP_CITY_DB: '/nonexistent.mmdb' }, 'GEOIP_CITY_DB', /cannot read/)
rejects({ API_KEYS: 'short' }, 'API_KEYS', /16/)
rejects({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /one of/)
rejects({ HOST: '0.0.0.0' }, 'HOST', /API_KEYS/)

t.test('a public HOST is accepted once API_KEYS are set', async t => {
  const c = loadConfig({ HOST: '0.0.0.0', API_KEYS: `${KEY}, ${KEY}2` })
  t.equal(c.host, '0.0.0.0')
  t.same(c.apiKeys, [KEY, `${KEY}2`])
})

t.test('cluster seeds parse, IPv6 included', async t => {
  t.same(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, [::1]:7001' }).redisClusterNodes, [{ host: '10.0.0.1', port: 7000 }, { host: '::1', port: 7001 }])
})

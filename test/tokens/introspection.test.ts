// Opaque tokens: RFC 7662 introspection at the issuer that declares it, cached for at most 60 s.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { openGeoLookup } from '../../src/signals/geo.js'
import { cleanup, tokenApp } from './app.js'

const geo = await openGeoLookup({})
t.teardown(() => geo.close())

const nowS = (): number => Math.floor(Date.now() / 1000)
const seen: Array<{ authorization: string | undefined, body: string }> = []
let down = false
const server = createServer((req, res) => {
  let body = ''
  req.on('data', (c: Buffer) => { body += c.toString() })
  req.on('end', () => {
    if (req.url !== '/introspect') { res.statusCode = 404; res.end(); return }
    seen.push({ authorization: req.headers.authorization, body })
    if (down) { res.statusCode = 503; res.end(); return }
    const token = new URLSearchParams(body).get('token')
    res.setHeader('content-type', 'application/json')
    if (token === 'opaque-strong-0001') res.end(JSON.stringify({ active: true, sub: 'u1', aud: 'https://api.example.com', amr: ['pwd', 'otp'], auth_time: nowS() - 30, exp: nowS() + 600 }))
    else if (token === 'opaque-other-aud') res.end(JSON.stringify({ active: true, sub: 'u1', aud: 'https://elsewhere.example.com', exp: nowS() + 600 }))
    else res.end(JSON.stringify({ active: false }))
  })
})
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => { server.closeAllConnections(); server.close() })
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

const { app, dir, clock } = await tokenApp({
  geo,
  secrets: { INTROSPECTION_SECRET: 's3cret' },
  files: {
    'p.yaml': `
issuers:
  - issuer: ${base}
    audience: [https://api.example.com]
    jwksUri: ${base}/jwks
    introspection: { endpoint: ${base}/introspect, clientId: stepup-pdp, clientSecretEnv: INTROSPECTION_SECRET }
policies:
  - id: payouts
    actions: [payments.payout]
    require: { aal: 2 }
`
  }
})
t.teardown(async () => { await app.close(); cleanup(dir) })
const decide = async (token: string) => (await app.inject({ method: 'POST', url: '/decide', payload: { action: 'payments.payout', token } })).json()

t.test('an active opaque token is the session; the answer is cached up to 60 s', async t => {
  const before = seen.length
  t.equal((await decide('opaque-strong-0001')).decision, 'allow')
  t.equal(seen.at(-1)!.authorization, `Basic ${Buffer.from('stepup-pdp:s3cret').toString('base64')}`)
  t.match(seen.at(-1)!.body, /token=opaque-strong-0001/)
  t.equal((await decide('opaque-strong-0001')).decision, 'allow')
  t.equal(seen.length, before + 1, 'cached')
  clock.offsetMs += 61_000
  await decide('opaque-strong-0001')
  t.equal(seen.length, before + 2, 'asked again after 60 s')
})

t.test('inactive, another audience, or an introspection outage: never allow', async t => {
  const inactive = await decide('opaque-unknown-1')
  t.equal(inactive.decision, 'deny')
  t.match(inactive.challenge.wwwAuthenticate, /invalid_token/)
  t.match(inactive.reasons[0].detail, /^active:/)
  t.match((await decide('opaque-other-aud')).reasons[0].detail, /^aud:/)
  down = true
  const outage = await decide('opaque-unknown-2')
  t.equal(outage.decision, 'deny')
  t.equal(outage.challenge.status, 503)
  down = false
})

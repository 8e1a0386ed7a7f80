// Real sockets: a slow-loris body or header is cut off within the configured timeout. (What a
// real server process does with its connections at SIGTERM is in operations.test.ts, on the
// server process that test starts anyway.)
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { pino } from 'pino'
import { buildApp, DEFAULT_HTTP_TIMEOUTS } from '../../src/app.js'
import { PolicyHolder } from '../../src/policy/load.js'
import { openGeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { EXAMPLE_POLICIES, policySet } from '../helpers/app.js'

const BODY = JSON.stringify({ action: 'profile.read', subject: { id: 'u' } })

interface Outcome { data: string, closedAfterMs: number, error?: string }

/** Opens a socket, runs `drive` on it, and resolves when the server closes it (or after `maxMs`). */
function talk (port: number, drive: (s: Socket) => void, maxMs = 15_000): Promise<Outcome> {
  return new Promise(resolve => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    let data = ''
    let error: string | undefined
    const timer = setTimeout(() => { socket.destroy(); resolve({ data, closedAfterMs: Infinity }) }, maxMs)
    socket.on('data', d => { data += String(d) })
    socket.on('error', e => { error = (e as NodeJS.ErrnoException).code ?? e.message })
    socket.on('close', () => { clearTimeout(timer); resolve({ data, closedAfterMs: Date.now() - started, ...(error ? { error } : {}) }) })
    socket.on('connect', () => drive(socket))
  })
}

/** Writes `text` one byte every `everyMs` until the socket closes. */
const trickle = (s: Socket, text: string, everyMs: number): void => {
  let i = 0
  const tick = setInterval(() => {
    if (s.destroyed || i >= text.length) { clearInterval(tick); return }
    s.write(text[i++]!)
  }, everyMs)
  s.on('close', () => clearInterval(tick))
}

t.test('the service sets request, header and connection timeouts by default', async t => {
  t.ok(DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs > 0 && DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs <= 60_000, `requestTimeout ${DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs} ms`)
  t.ok(DEFAULT_HTTP_TIMEOUTS.headersTimeoutMs > 0 && DEFAULT_HTTP_TIMEOUTS.headersTimeoutMs <= DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs)
  t.ok(DEFAULT_HTTP_TIMEOUTS.connectionTimeoutMs > 0)
})

t.test('slow clients are cut off within the configured timeouts', async t => {
  const geo = await openGeoLookup({})
  t.teardown(() => geo.close())
  const app = await buildApp({ apiKeys: [], adminApiKeys: [] }, {
    policies: new PolicyHolder(await policySet(EXAMPLE_POLICIES)),
    geo,
    history: createMemoryHistoryStore({ maxSubjects: 100 }),
    logger: pino({ level: 'silent' }),
    maxEventLoopDelayMs: 0,
    httpTimeouts: { requestTimeoutMs: 1500, headersTimeoutMs: 1000, connectionTimeoutMs: 5000 }
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  // The three slow clients at once, each on its own connection.
  const [body, headers, silent] = await Promise.all([
    talk(port, s => {
      s.write(`POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`)
      trickle(s, BODY, 300) // ~15 s for the whole body
    }),
    talk(port, s => trickle(s, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200), 200)),
    talk(port, () => {})
  ])
  t.ok(body.closedAfterMs < 4000, `a slow body is cut off after ${body.closedAfterMs} ms`)
  t.match(body.data, /^HTTP\/1\.1 408/, `answered 408 Request Timeout: ${body.data.split('\r\n')[0] ?? '(nothing)'}`)
  t.match(body.data, /\r\n\r\n\{"error":"request_timeout","message":"request: [^"]+"\}$/, 'in the same { error, message } form as every 4xx')

  t.ok(headers.closedAfterMs < 4000, `slow headers are cut off after ${headers.closedAfterMs} ms`)

  t.ok(silent.closedAfterMs < 7000, `a connection that sends nothing is closed after ${silent.closedAfterMs} ms`)

  const normal = await talk(port, s => s.end(`POST /decide HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`))
  t.match(normal.data, /^HTTP\/1\.1 200/, 'a prompt request is served')
})

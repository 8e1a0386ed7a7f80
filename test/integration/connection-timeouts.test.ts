// Real sockets: a slow-loris body or header is cut off within the configured timeout, and at
// SIGTERM a real server process closes idle keep-alive connections cleanly (FIN, no reset).
import t from 'tap'
import { spawn } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
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

  const body = await talk(port, s => {
    s.write(`POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`)
    trickle(s, BODY, 300) // ~15 s for the whole body
  })
  t.ok(body.closedAfterMs < 4000, `a slow body is cut off after ${body.closedAfterMs} ms`)
  t.match(body.data, /^HTTP\/1\.1 408/, `answered 408 Request Timeout: ${body.data.split('\r\n')[0] ?? '(nothing)'}`)
  t.match(body.data, /\r\n\r\n\{"error":"request_timeout","message":"request: [^"]+"\}$/, 'in the same { error, message } form as every 4xx')

  const headers = await talk(port, s => trickle(s, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200), 200))
  t.ok(headers.closedAfterMs < 4000, `slow headers are cut off after ${headers.closedAfterMs} ms`)

  const silent = await talk(port, () => {})
  t.ok(silent.closedAfterMs < 7000, `a connection that sends nothing is closed after ${silent.closedAfterMs} ms`)

  const normal = await talk(port, s => s.end(`POST /decide HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`))
  t.match(normal.data, /^HTTP\/1\.1 200/, 'a prompt request is served')
})

const freePort = (): Promise<number> => new Promise((resolve, reject) => {
  const s = createServer()
  s.listen(0, '127.0.0.1', () => { const a = s.address(); s.close(() => resolve((a as { port: number }).port)) })
  s.on('error', reject)
})

t.test('SIGTERM closes idle keep-alive connections cleanly and finishes requests in flight', async t => {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', d => { output += String(d) })
  child.stderr.on('data', d => { output += String(d) })
  t.teardown(() => { child.kill('SIGKILL') })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))

  let up = false
  for (let i = 0; i < 200 && !up; i++) {
    up = await fetch(`http://127.0.0.1:${port}/healthz`).then(r => r.ok, () => false)
    if (!up) await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.ok(up, `the server starts\n${output}`)

  // Three idle keep-alive connections, each having served one request.
  const idle = await Promise.all([0, 1, 2].map(() => new Promise<{ socket: Socket, closed: Promise<{ error?: string, fin: boolean }> }>(resolve => {
    const socket = connect(port, '127.0.0.1')
    let fin = false
    let error: string | undefined
    let seen = ''
    socket.on('end', () => { fin = true })
    socket.on('error', e => { error = (e as NodeJS.ErrnoException).code ?? e.message })
    const closed = new Promise<{ error?: string, fin: boolean }>(r => socket.on('close', () => r({ fin, ...(error ? { error } : {}) })))
    socket.on('data', d => {
      seen += String(d)
      if (seen.includes('\r\n\r\n') && seen.includes('"ok"')) resolve({ socket, closed })
    })
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  })))
  // One request in flight at SIGTERM: headers sent, body still to come.
  const inFlight = talk(port, s => {
    s.write(`POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`)
    setTimeout(() => s.write(BODY), 300)
  })
  await new Promise(resolve => setTimeout(resolve, 100))
  child.kill('SIGTERM')

  for (const [i, c] of idle.entries()) {
    const outcome = await c.closed
    t.same(outcome, { fin: true }, `idle connection ${i}: closed with FIN, no error`)
  }
  const answered = await inFlight
  t.match(answered.data, /^HTTP\/1\.1 200/, `the request in flight is answered: ${answered.data.split('\r\n')[0] ?? ''}`)
  t.notOk(answered.error, 'and its connection is not reset')
  t.equal(await exited, 0, `exit 0\n${output}`)
})

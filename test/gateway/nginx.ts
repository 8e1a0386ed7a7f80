/**
 * A real nginx (the installed binary) running the examples/nginx configuration, templated only
 * for ports, paths and the key, in front of a small Node upstream that echoes what it received.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { onPath, requirePrograms, type TestLike } from '../helpers/tools.js'

export const NGINX_TEMPLATE = fileURLToPath(new URL('../../examples/nginx/templates/default.conf.template', import.meta.url))

export async function freePort (): Promise<number> {
  const server = createNetServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

/** The example's server block with only ports, addresses and the key replaced. */
export function templatedServer (options: { listen: number, pdp: number, upstream: number, key: string }): string {
  const text = readFileSync(NGINX_TEMPLATE, 'utf8')
  const out = text
    .replace('server stepup-pdp:8080;', `server 127.0.0.1:${options.pdp};`)
    .replace('server upstream:8000;', `server 127.0.0.1:${options.upstream};`)
    .replace('listen 80;', `listen 127.0.0.1:${options.listen};`)
    .replaceAll('${STEPUP_API_KEY}', options.key)
  if (out.includes('stepup-pdp:8080') || out.includes('upstream:8000') || out.includes('listen 80;') || out.includes('${')) throw new Error('the example nginx template changed: update the test templating')
  return out
}

export interface Nginx { port: number, stop: () => Promise<void>, log: () => string }

export async function startNginx (options: { pdp: number, upstream: number, key: string, extraLocations?: string }): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-nginx-'))
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub))
  const port = await freePort()
  const conf = `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${templatedServer({ listen: port, pdp: options.pdp, upstream: options.upstream, key: options.key }).replace('    location / {', `    ${options.extraLocations ?? ''}\n    location / {`)}
}
`
  writeFileSync(join(dir, 'nginx.conf'), conf)
  let log = ''
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout!.on('data', (d: Buffer) => { log += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { log += d.toString() })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${log}`)
    if (await canConnect(port)) break
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`nginx did not start: ${log}`) }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    port,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGQUIT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

const canConnect = (port: number): Promise<boolean> => new Promise(resolve => {
  const socket = connect(port, '127.0.0.1')
  socket.once('connect', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => resolve(false))
})

/** An upstream that answers 200 with the method, URL and headers it received. */
export async function startUpstream (): Promise<{ port: number, server: Server, hits: number }> {
  const state = { port: 0, server: undefined as unknown as Server, hits: 0 }
  state.server = createServer((req, res) => {
    state.hits++
    req.resume()
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ upstream: true, method: req.method, url: req.url, headers: req.headers }))
    })
  })
  await new Promise<void>(resolve => state.server.listen(0, '127.0.0.1', resolve))
  state.port = (state.server.address() as AddressInfo).port
  return state
}

/**
 * Call first in a file that needs nginx: true when it may go on. Otherwise its nginx tests skip
 * with a loud notice, or, under CI=true, fail.
 */
export function requireNginx (t: TestLike): boolean {
  return requirePrograms(t, 'nginx', onPath('nginx', ['-v']) ? [] : ['nginx'], 'Install nginx (apt-get install nginx-light)')
}

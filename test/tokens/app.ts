/** An app over a temporary policy folder, on the real clock (tokens are signed with real time). */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { buildApp, type AppConfig } from '../../src/app.js'
import { loadPolicySet, PolicyHolder } from '../../src/policy/load.js'
import type { GeoLookup } from '../../src/signals/geo.js'
import { createMemoryHistoryStore } from '../../src/signals/memory-history.js'
import { TokenVerifier } from '../../src/tokens/verify.js'

export interface TokenApp { app: FastifyInstance, verifier: TokenVerifier, policies: PolicyHolder, dir: string, clock: { offsetMs: number } }

export function policyFolder (files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'stepup-tokens-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

export async function tokenApp (options: { geo: GeoLookup, files: Record<string, string>, config?: Partial<AppConfig>, fetchTimeoutMs?: number, secrets?: Record<string, string> }): Promise<TokenApp> {
  const dir = policyFolder(options.files)
  const { set } = await loadPolicySet(dir)
  const clock = { offsetMs: 0 }
  const now = (): number => Date.now() + clock.offsetMs
  const policies = new PolicyHolder(set, now)
  const verifier = new TokenVerifier({ now, fetchTimeoutMs: options.fetchTimeoutMs ?? 1000, secrets: options.secrets ?? {} })
  const app = await buildApp({ apiKeys: [], adminApiKeys: [], ...options.config }, {
    policies, geo: options.geo, history: createMemoryHistoryStore({ maxSubjects: 1000 }), logger: pino({ level: 'silent' }), now, verifier, maxEventLoopDelayMs: 0
  })
  await app.ready()
  return { app, verifier, policies, dir, clock }
}

export const cleanup = (dir: string): void => rmSync(dir, { recursive: true, force: true })

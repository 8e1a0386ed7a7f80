/**
 * `stepup decide --input req.json`: one decision through the real decision service, with an
 * in-memory history (empty: every device and country is new) and the bundled geo database.
 * Prints an explanation, or with `--json` the body POST /decide would answer.
 */
import { readFile } from 'node:fs/promises'
import { pino } from 'pino'
import { toDecideResponse } from '../contract/index.js'
import { PolicyLoadError } from '../errors.js'
import type { GeoFact } from '../engine/model.js'
import { loadPolicySet, PolicyHolder } from '../policy/load.js'
import { createDecisionService } from '../service.js'
import { openGeoLookup } from '../signals/geo.js'
import { createMemoryHistoryStore } from '../signals/memory-history.js'
import { formatProblemLine } from './check.js'
import { explain } from './explain.js'
import { EXIT, UsageError, type Io } from './io.js'
import { parseDecideInput } from './request.js'

export interface DecideOptions {
  input: string
  policies: string
  json: boolean
  now: string | undefined
}

async function readInput (input: string): Promise<string> {
  try {
    if (input === '-') {
      const chunks: Buffer[] = []
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
      return Buffer.concat(chunks).toString('utf8')
    }
    return await readFile(input, 'utf8')
  } catch (err) {
    throw new UsageError(`--input: cannot read ${input}: ${(err as Error).message}`)
  }
}

export async function decideCommand (options: DecideOptions, io: Io): Promise<number> {
  let nowMs = Date.now()
  if (options.now !== undefined) {
    nowMs = Date.parse(options.now)
    if (Number.isNaN(nowMs)) throw new UsageError(`--now: not an ISO 8601 time: ${options.now}`)
  }
  const text = await readInput(options.input)

  let set
  try {
    set = (await loadPolicySet(options.policies)).set
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err
    io.err(`stepup decide: the policies in ${options.policies} do not validate (run stepup check ${options.policies}):`)
    for (const p of err.problems) io.err('  ' + (p.field === '(folder)' ? `${p.file}: ${p.message}` : formatProblemLine(p, options.policies)))
    return EXIT.usage
  }
  const request = parseDecideInput(text, options.input === '-' ? 'stdin' : options.input, set.assurance)

  const geo = await openGeoLookup({})
  try {
    const service = createDecisionService({
      policies: new PolicyHolder(set, () => nowMs),
      geo,
      history: createMemoryHistoryStore({ maxSubjects: 16 }),
      logger: pino({ level: 'silent' }),
      now: () => nowMs
    })
    const result = await service.decide(request, { trace: !options.json })
    if (options.json) {
      // The body of POST /decide's 200 answer.
      io.out(JSON.stringify(toDecideResponse(result), null, 2))
      return EXIT.ok
    }
    // Shown beside the request: the location the address resolves to.
    const fact: GeoFact = request.ip !== undefined ? geo.lookup(request.ip) : { status: 'none' }
    for (const line of explain({ set, request, decision: result.decision, decisionId: result.decisionId, now: nowMs / 1000, geo: fact })) io.out(line)
    return EXIT.ok
  } finally {
    geo.close()
  }
}

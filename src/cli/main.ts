#!/usr/bin/env node
/** The `stepup` command (package bin): see `stepup --help` and docs/operations.md. */
import { processIo } from './io.js'
import { run } from './run.js'

try {
  process.exitCode = await run(process.argv.slice(2), processIo)
} catch (err) {
  console.error(`stepup: internal error: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 2
}

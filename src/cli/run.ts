/** Argument parsing and dispatch for `stepup` (node:util parseArgs; no dependency). */
import { readFileSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { EXIT, UsageError, type Io } from './io.js'

const HELP: Record<Command, string> = {
  check: `Usage: stepup check [dir | file.yaml] [--json]
  Validate a policy folder (default ./policies), or one policy file with the lists/ beside it,
  exactly as the server does. One line per problem, errors first:
    <file>:<line>:<col> <field>: error: <problem>
    <file>:<line>:<col> <field>: warning: <problem>
  --json                 One JSON document: ok, revision, counts, errors and warnings.
  Exit 1 on any error; warnings never fail.`,
  test: `Usage: stepup test [dir | file.test.yaml] [--coverage] [--json] [--policies <dir>]
  Run the policy test suites (*.test.yaml) found below dir (default ./policies), or the one
  suite file given. A suite's policies: its policiesDir, its inline policies, else the folder
  being tested (dir, or the folder the single file is in).
  Prints ok/FAIL per case, a diff per failure, then "N passed, M failed".
  --coverage             Also list the policies and triggers that no case fired.
  --policies <dir>       The folder being tested, e.g. for a suite file in a subfolder of it.
  --json                 One JSON document: ok, every suite and case (ok, failures), totals,
                         and the coverage with --coverage.
  Exit 1 when any case fails or no suite is found.`,
  decide: `Usage: stepup decide --input <file> [--policies <dir>] [--json] [--now <time>]
  One decision for a POST /decide body (JSON; "-" reads stdin), explained.
  --policies <dir>       Policy folder (default ./policies).
  --json                 Print the decision as POST /decide answers it.
  --now <time>           The clock, as an ISO 8601 time (default: now).`,
  replay: `Usage: stepup replay --policies <dir> --from <export file | redis://...> [--since 24h] [--fail-on weaker] [--json]
  Decide recorded decisions again with the policies in <dir>, using the facts recorded with
  them (no geo, Redis or clock is consulted). Prints the counts before -> after, the policies
  that fire differently, a sample of changed decisions with their reasons, and the decisions
  that cannot be judged because the record lacks a fact the new set needs.
  --from <file>          Lines of GET /audit/export, or the Redis URL of the audit stream.
  --since <when>         Only decisions since then: a duration (24h, 30m, 7d) or an ISO time.
  --fail-on weaker       Exit 1 when any decision becomes less restrictive (for CI).
  --prefix <prefix>      Redis key prefix of the audit stream (default stepup:).
  --json                 The report as JSON.`,
  diff: `Usage: stepup diff <old dir> <new dir> [--json]
  The semantic difference of two policy folders, one line per change with file:line:
  added, removed, loosened (lower aal, longer maxAge, wider factors, fewer actions, a narrower
  scope, enforce -> report, a trigger removed, ...), tightened, changed.
  --json                 The changes as JSON.`
}

export const USAGE = `Usage: stepup <command> [options]

Commands:
  check [dir]            Validate a policy folder (or one file) exactly as the server does (default ./policies).
  test [dir]             Run the policy test suites (*.test.yaml) below dir (default ./policies), or one suite file.
    --coverage           Also list the policies and triggers that no case fired.
    --json               One JSON document: every suite and case, the totals (and the coverage).
  decide --input <file>  One decision for a POST /decide body (JSON; "-" reads stdin), explained.
  replay --policies <dir> --from <file|redis URL>
                         Decide recorded decisions again with another policy folder.
  diff <old> <new>       What changed between two policy folders: added, removed, loosened, tightened.

Run "stepup <command> --help" for a command's options.

Options:
  -h, --help             Show this help.
  -v, --version          Show the version.

Exit codes: 0 ok; 1 policy errors (check), failed cases (test) or weaker decisions (replay --fail-on weaker); 2 usage, input, I/O or internal errors.`

const COMMANDS = ['check', 'test', 'decide', 'replay', 'diff'] as const
type Command = typeof COMMANDS[number]

type Options = NonNullable<ParseArgsConfig['options']>

function parse (args: string[], options: Options, maxPositionals: number): { values: Record<string, string | boolean | Array<string | boolean> | undefined>, positionals: string[] } {
  let parsed
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message, true)
  }
  if (!parsed.values.help && parsed.positionals.length > maxPositionals) throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]!}"`, true)
  return parsed
}

function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

const str = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

export async function run (argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv
  if (command === '-h' || command === '--help') {
    io.out(USAGE)
    return EXIT.ok
  }
  if (command === 'help') {
    const topic = rest[0]
    io.out(topic !== undefined && (COMMANDS as readonly string[]).includes(topic) ? HELP[topic as Command] : USAGE)
    return EXIT.ok
  }
  if (command === '-v' || command === '--version' || command === 'version') {
    io.out(version())
    return EXIT.ok
  }
  if (command === undefined || !(COMMANDS as readonly string[]).includes(command)) {
    io.err(command === undefined ? 'stepup: a command is required' : `stepup: unknown command "${command}"`)
    io.err(USAGE)
    return EXIT.usage
  }
  const help = HELP[command as Command]
  try {
    switch (command as Command) {
      case 'check': {
        const { values, positionals } = parse(rest, { json: { type: 'boolean' } }, 1)
        if (values.help) { io.out(help); return EXIT.ok }
        const { check } = await import('./check.js') // each command loads only what it needs
        return await check(positionals[0] ?? './policies', io, { json: values.json === true })
      }
      case 'test': {
        const { values, positionals } = parse(rest, { coverage: { type: 'boolean' }, json: { type: 'boolean' }, policies: { type: 'string', short: 'p' } }, 1)
        if (values.help) { io.out(help); return EXIT.ok }
        const { testSuites } = await import('./test-suites.js')
        return await testSuites(positionals[0] ?? './policies', { coverage: values.coverage === true, json: values.json === true, policies: str(values.policies) }, io)
      }
      case 'replay': {
        const { values } = parse(rest, {
          policies: { type: 'string', short: 'p' },
          from: { type: 'string', short: 'f' },
          since: { type: 'string' },
          'fail-on': { type: 'string' },
          prefix: { type: 'string' },
          json: { type: 'boolean' }
        }, 0)
        if (values.help) { io.out(help); return EXIT.ok }
        if (str(values.policies) === undefined) throw new UsageError('--policies <dir> is required (the policy folder to replay with)', true)
        if (str(values.from) === undefined) throw new UsageError('--from <file | redis URL> is required (GET /audit/export output, or the audit stream\'s Redis)', true)
        const { replayCommand } = await import('./replay.js')
        return await replayCommand({
          policies: str(values.policies)!,
          from: str(values.from)!,
          since: str(values.since),
          failOn: str(values['fail-on']),
          json: values.json === true,
          ...(str(values.prefix) !== undefined ? { prefix: str(values.prefix)! } : {})
        }, io)
      }
      case 'diff': {
        const { values, positionals } = parse(rest, { json: { type: 'boolean' } }, 2)
        if (values.help) { io.out(help); return EXIT.ok }
        if (positionals.length !== 2) throw new UsageError('two policy folders are required: stepup diff <old> <new>', true)
        const { diffCommand } = await import('./diff.js')
        return await diffCommand(positionals[0]!, positionals[1]!, { json: values.json === true }, io)
      }
      case 'decide': {
        const { values } = parse(rest, {
          input: { type: 'string', short: 'i' },
          policies: { type: 'string', short: 'p' },
          json: { type: 'boolean' },
          now: { type: 'string' }
        }, 0)
        if (values.help) { io.out(help); return EXIT.ok }
        if (typeof values.input !== 'string') throw new UsageError('--input <file> is required (a JSON body of POST /decide)', true)
        const { decideCommand } = await import('./decide.js')
        return await decideCommand({
          input: values.input,
          policies: typeof values.policies === 'string' ? values.policies : './policies',
          json: values.json === true,
          now: typeof values.now === 'string' ? values.now : undefined
        }, io)
      }
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(`stepup ${command}: ${err.message}`)
    if (err.showUsage) io.err('Run "stepup --help" for usage.')
    return EXIT.usage
  }
}

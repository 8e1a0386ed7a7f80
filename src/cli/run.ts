/** Argument parsing and dispatch for `stepup` (node:util parseArgs; no dependency). */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { EXIT, UsageError, type Io } from './io.js'

export const USAGE = `Usage: stepup <command> [options]

Commands:
  check [dir]            Validate a policy folder exactly as the server does (default ./policies).
                         One line per problem, errors first:
                           <file>:<line>:<col> <field>: error: <problem>
                           <file>:<line>:<col> <field>: warning: <problem>
                         Exit 1 on any error; warnings never fail.
  test [dir]             Run the policy test suites (*.test.yaml) found below dir (default ./policies).
                         Prints ok/FAIL per case, a diff per failure, then "N passed, M failed".
    --coverage           Also list the policies and triggers that no case fired.
  decide --input <file>  One decision for a POST /decide body (JSON; "-" reads stdin), explained.
    --policies <dir>     Policy folder (default ./policies).
    --json               Print the decision as POST /decide answers it.
    --now <time>         The clock, as an ISO 8601 time (default: now).

Options:
  -h, --help             Show this help.

Exit codes: 0 ok; 1 policy errors (check) or failed cases (test); 2 usage, input, I/O or internal errors.`

const COMMANDS = ['check', 'test', 'decide'] as const

type Options = NonNullable<ParseArgsConfig['options']>

function parse (args: string[], options: Options, maxPositionals: number): { values: Record<string, string | boolean | Array<string | boolean> | undefined>, positionals: string[] } {
  let parsed
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message, true)
  }
  if (parsed.positionals.length > maxPositionals) throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]!}"`, true)
  return parsed
}

export async function run (argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv
  if (command === '-h' || command === '--help' || command === 'help') {
    io.out(USAGE)
    return EXIT.ok
  }
  if (command === undefined || !(COMMANDS as readonly string[]).includes(command)) {
    io.err(command === undefined ? 'stepup: a command is required' : `stepup: unknown command "${command}"`)
    io.err(USAGE)
    return EXIT.usage
  }
  try {
    switch (command) {
      case 'check': {
        const { values, positionals } = parse(rest, {}, 1)
        if (values.help) { io.out(USAGE); return EXIT.ok }
        const { check } = await import('./check.js') // each command loads only what it needs
        return await check(positionals[0] ?? './policies', io)
      }
      case 'test': {
        const { values, positionals } = parse(rest, { coverage: { type: 'boolean' } }, 1)
        if (values.help) { io.out(USAGE); return EXIT.ok }
        const { testSuites } = await import('./test-suites.js')
        return await testSuites(positionals[0] ?? './policies', { coverage: values.coverage === true }, io)
      }
      default: {
        const { values } = parse(rest, {
          input: { type: 'string', short: 'i' },
          policies: { type: 'string', short: 'p' },
          json: { type: 'boolean' },
          now: { type: 'string' }
        }, 0)
        if (values.help) { io.out(USAGE); return EXIT.ok }
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

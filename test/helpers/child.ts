/**
 * Node's arguments for a child process that runs a TypeScript entry (src/server.ts,
 * src/cli/main.ts): the loader this test process runs under (tap's TypeScript loader, and its
 * coverage), so that the child compiles each source file to the same JavaScript as the tests do.
 * A child under another compiler (tsx) once wrote coverage for the same files through different
 * source maps, and the merged report counted most files as one line each.
 */
export const TS_CHILD_ARGS: readonly string[] = process.execArgv.some(a => a.includes('typescript') || a.includes('tsx'))
  ? process.execArgv.filter(a => !a.startsWith('--inspect')) // a debugged test: the child would take its port
  : ['--import', 'tsx']

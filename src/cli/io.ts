/** Where the commands write: the process's streams, or buffers in tests. */
export interface Io {
  out: (line: string) => void
  err: (line: string) => void
}

export const processIo: Io = {
  out: line => { process.stdout.write(line + '\n') },
  err: line => { process.stderr.write(line + '\n') }
}

/** Exit codes: 0 success, 1 the policies or the cases failed, 2 usage, input, I/O or internal errors. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

/** A failure that ends the command with a message and exit 2 (bad usage, bad input, unreadable files). */
export class UsageError extends Error {
  constructor (message: string, readonly showUsage = false) {
    super(message)
    this.name = 'UsageError'
  }
}

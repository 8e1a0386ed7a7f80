/**
 * Hot reload (docs/operations.md#reloads): file changes (chokidar, debounced, with a periodic re-stat as a safety net),
 * SIGHUP and `POST /policies/reload` load a new set in a worker thread and swap it in
 * atomically. A set that does not validate, or that removes policies or empties a file that
 * held some without the operator's confirmation, is refused: the last good set keeps serving
 * and the error is shown on /readyz and GET /policies. Every applied or refused reload is an
 * audit event with the revision before and after and the ids added, removed and changed.
 */
import { access, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { watch as chokidarWatch, type FSWatcher } from 'chokidar'
import type { Logger } from 'pino'
import { formatProblem, PolicyLoadError, type LoadProblem, type PolicyProblem } from '../errors.js'
import type { PolicyAuditRecord } from '../audit/audit-log.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { loadPolicySet, type PolicyHolder } from './load.js'
import { setChanges, type SetChanges } from './set-changes.js'
import { sharedWorkerLoader, type LoadLimits, type WorkerLoaded, type WorkerLoader } from './worker-load.js'

/** The file whose presence in the folder confirms removals for the reloads it sees. */
export const ALLOW_REMOVALS_FILE = '.allow-removals'

const MIN_DEBOUNCE_MS = 100

export type ReloadOutcome = 'applied' | 'unchanged' | 'invalid' | 'removal_refused'

export interface ReloadResult {
  ok: boolean
  outcome: ReloadOutcome
  policies: number
  /** The digest of the set that serves after this reload. */
  hash: string
  /** Its revision (as decisions, GET /policies and /readyz name it). */
  revision: string
  revisionBefore: string
  changed: boolean
  added: string[]
  removed: string[]
  changedIds: string[]
  errors: string[]
  warnings: string[]
  /** The same errors, then warnings, as objects with their stable `code` (docs/policies.md#problem-codes). */
  details: LoadProblem[]
}

export interface ReloadOptions {
  /** The operator confirmed that policies may disappear (`?allowRemovals=true`, SIGHUP). */
  allowRemovals?: boolean
}

export interface PolicyReloader {
  reload: (trigger: string, options?: ReloadOptions) => Promise<ReloadResult>
  /** Watches the folder; changes are debounced by `debounceMs` (at least 100 ms). */
  watch: () => void
  close: () => void
}

export function createPolicyReloader (options: {
  dir: string
  holder: PolicyHolder
  logger: Logger
  debounceMs?: number
  /** Re-stat the folder this often (ms) in case a change event was lost; 0 turns it off. */
  pollMs?: number
  /** Load in a worker thread (default) or, for tests of the logic alone, on this thread. */
  worker?: boolean
  limits?: Partial<LoadLimits>
  /** The worker that loads (default: the process's shared one). */
  loader?: WorkerLoader
  onResult?: (result: ReloadResult) => void
  /** Audit events `policy.reloaded` / `policy.rejected`. */
  onEvent?: (record: PolicyAuditRecord) => void
  now?: () => number
}): PolicyReloader {
  const { dir, holder, logger } = options
  const now = options.now ?? Date.now
  let watcher: FSWatcher | undefined
  let timer: NodeJS.Timeout | undefined
  let poll: NodeJS.Timeout | undefined
  let closed = false
  // chokidar drops a second `change` of a file within 50 ms of the first. Harmless only if the
  // reload reads the folder after that window: the debounce must outlast it.
  const debounceMs = Math.max(MIN_DEBOUNCE_MS, options.debounceMs ?? 200)

  const load = async (): Promise<WorkerLoaded> => {
    if (options.worker === false) {
      const { set, warnings } = await loadPolicySet(dir, options.limits && { maxFileBytes: 8 << 20, maxFolderBytes: 64 << 20, maxFiles: 10_000, ...options.limits })
      return { set, warnings, files: [...new Set(set.policies.map(p => p.file))] }
    }
    return (options.loader ?? sharedWorkerLoader()).load(dir, options.limits)
  }

  const removalConfirmed = async (explicit: boolean | undefined): Promise<boolean> => {
    if (explicit === true) return true
    try { await access(join(dir, ALLOW_REMOVALS_FILE)); return true } catch { return false }
  }

  const event = (name: PolicyAuditRecord['event'], { trigger, before, after, changes, problems }: {
    trigger: string
    before: CompiledPolicySet
    /** The revision of the new set, when one was compiled. */
    after?: string | undefined
    changes: Pick<SetChanges, 'added' | 'removed' | 'changed'>
    problems?: string[]
  }): void => {
    options.onEvent?.({
      at: now(),
      event: name,
      trigger,
      revisionBefore: before.revision,
      ...(after !== undefined ? { revisionAfter: after } : {}),
      added: changes.added,
      removed: changes.removed,
      changed: changes.changed,
      ...(problems ? { problems } : {})
    })
  }

  const once = async (trigger: string, reloadOptions: ReloadOptions): Promise<ReloadResult> => {
    const before = holder.current
    const base = { revisionBefore: before.revision, added: [] as string[], removed: [] as string[], changedIds: [] as string[] }
    let loaded: WorkerLoaded
    try {
      loaded = await load()
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err
      holder.refuse(err)
      const errors = err.problems.map(formatProblem)
      logger.error({ trigger, errors }, 'policy reload refused: the previous set keeps serving')
      event('policy.rejected', { trigger, before, changes: { added: [], removed: [], changed: [] }, problems: errors })
      return { ...base, ok: false, outcome: 'invalid', policies: before.policies.length, hash: before.hash, revision: before.revision, changed: false, errors, warnings: [], details: err.problems }
    }
    const { set, warnings } = loaded
    const warningLines = warnings.map(formatProblem)
    if (set.hash === before.hash) {
      holder.clearError()
      logger.info({ trigger, policies: set.policies.length, revision: set.revision }, 'policies unchanged')
      return { ...base, ok: true, outcome: 'unchanged', policies: set.policies.length, hash: set.hash, revision: set.revision, changed: false, errors: [], warnings: warningLines, details: warnings }
    }
    const changes = setChanges(before, set, loaded.files)
    const diff = { added: changes.added, removed: changes.removed, changedIds: changes.changed }
    if ((changes.removed.length > 0 || changes.emptied.length > 0 || changes.gatewayRemoved.length > 0) && !(await removalConfirmed(reloadOptions.allowRemovals))) {
      const problems = removalProblems(before, changes)
      const error = new PolicyLoadError(problems)
      holder.refuse(error)
      const errors = error.problems.map(formatProblem)
      logger.error({ trigger, removed: changes.removed, emptied: changes.emptied, gateway: changes.gatewayRemoved }, 'policy reload refused: it removes policies without confirmation; the previous set keeps serving')
      event('policy.rejected', { trigger, before, after: set.revision, changes, problems: errors })
      return { ...base, ...diff, ok: false, outcome: 'removal_refused', policies: before.policies.length, hash: before.hash, revision: before.revision, changed: false, errors, warnings: warningLines, details: [...error.problems, ...warnings] }
    }
    holder.replace(set)
    logger.info({ trigger, policies: set.policies.length, revisionBefore: before.revision, revision: set.revision, added: changes.added, removed: changes.removed, changed: changes.changed }, 'policies reloaded')
    event('policy.reloaded', { trigger, before, after: set.revision, changes })
    return { ...base, ...diff, ok: true, outcome: 'applied', policies: set.policies.length, hash: set.hash, revision: set.revision, changed: true, errors: [], warnings: warningLines, details: warnings }
  }

  /**
   * One reload at a time. A request while one runs queues exactly one more, which every
   * further request joins until it starts: no change is missed, none is compiled twice.
   * A confirmation given by any request that joins the queued reload applies to it.
   */
  let chain: Promise<unknown> = Promise.resolve()
  let queued: { promise: Promise<ReloadResult>, options: ReloadOptions } | undefined
  const reload = (trigger: string, reloadOptions: ReloadOptions = {}): Promise<ReloadResult> => {
    if (queued) {
      if (reloadOptions.allowRemovals === true) queued.options.allowRemovals = true
      return queued.promise
    }
    const entry = { options: { ...reloadOptions } } as { promise: Promise<ReloadResult>, options: ReloadOptions }
    entry.promise = chain.then(async () => {
      queued = undefined
      const result = await once(trigger, entry.options)
      options.onResult?.(result)
      return result
    })
    queued = entry
    chain = entry.promise.catch((err: unknown) => { logger.error({ err: (err as Error).message }, 'policy reload failed') })
    return entry.promise
  }

  const schedule = (why: string): void => {
    if (closed) return
    clearTimeout(timer)
    timer = setTimeout(() => { void reload(why).catch(() => undefined) }, debounceMs)
  }

  return {
    reload,
    watch () {
      // chokidar watches each folder and re-watches what is replaced, so rename-over (sed -i,
      // editors' atomic save, git checkout), moves, folder renames and the ConfigMap `..data`
      // swap are all seen, repeatedly, on every Node version (fs.watch's recursive mode on
      // Node 20 loses a file once it has been renamed over).
      if (options.worker !== false) (options.loader ?? sharedWorkerLoader()).warm(options.limits)
      watcher = chokidarWatch(dir, { ignoreInitial: true, persistent: false, followSymlinks: true, atomic: true })
      watcher.on('all', (kind, path) => { if (!/\.test\.ya?ml$/.test(path)) schedule(`file change: ${kind} ${path}`) })
      watcher.on('error', err => logger.error({ err: (err as Error).message }, 'policy folder watch failed; the periodic re-stat, SIGHUP and POST /policies/reload still reload'))
      const pollMs = options.pollMs ?? 10_000
      if (pollMs > 0) {
        let last: string | undefined
        const tick = async (): Promise<void> => {
          const print = await fingerprint(dir).catch(() => 'unreadable')
          if (last !== undefined && print !== last) schedule('re-stat: the folder changed')
          last = print
          if (!closed) poll = setTimeout(() => { void tick() }, pollMs).unref()
        }
        void tick()
      }
    },
    close () {
      closed = true
      clearTimeout(timer)
      clearTimeout(poll)
      void watcher?.close()
    }
  }
}

const CONFIRM = 'refused; confirm with POST /policies/reload?allowRemovals=true, SIGHUP or a .allow-removals file'

/** One problem per file that loses policies, at the line where the first of them was. */
function removalProblems (before: CompiledPolicySet, changes: SetChanges): PolicyProblem[] {
  const byFile = new Map<string, { line: number, ids: string[] }>()
  const removed = new Set(changes.removed)
  for (const p of before.policies) {
    if (!removed.has(p.id)) continue
    const entry = byFile.get(p.file) ?? { line: p.line, ids: [] }
    entry.ids.push(p.id)
    byFile.set(p.file, entry)
  }
  for (const file of changes.emptied) if (!byFile.has(file)) byFile.set(file, { line: 1, ids: [] })
  const gateway: PolicyProblem[] = changes.gatewayRemoved.length === 0
    ? []
    : [{ file: '(policy folder)', line: 1, col: 1, field: '(issuers, callers, routes)', code: 'removal_unconfirmed', message: `would remove ${changes.gatewayRemoved.join(', ')}: ${CONFIRM}`, severity: 'error' }]
  return [...gateway, ...[...byFile].map(([file, { line, ids }]) => ({
    file,
    line: changes.emptied.includes(file) ? 1 : line,
    col: 1,
    field: '(policies)',
    code: 'removal_unconfirmed' as const,
    message: changes.emptied.includes(file)
      ? `held ${ids.length > 0 ? ids.join(', ') : 'policies'} and now holds none (a truncated write?): ${CONFIRM}`
      : `would remove ${ids.join(', ')}: ${CONFIRM}`,
    severity: 'error' as const
  }))]
}

/** Names, sizes, modification times and inodes of everything below `dir` (links followed). */
async function fingerprint (dir: string): Promise<string> {
  const parts: string[] = []
  const walk = async (current: string, depth: number): Promise<void> => {
    const entries = (await readdir(current)).sort()
    for (const name of entries) {
      const full = join(current, name)
      const s = await stat(full).catch(() => undefined)
      if (!s) { parts.push(`${full}:gone`); continue }
      parts.push(`${full}:${s.ino}:${s.size}:${s.mtimeMs}`)
      if (s.isDirectory() && depth < 8 && !name.startsWith('..')) await walk(full, depth + 1)
    }
  }
  await walk(dir, 0)
  return parts.join('\n')
}

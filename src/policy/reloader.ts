/**
 * Hot reload (docs/operations.md#reloads): file changes (debounced), SIGHUP and `POST /policies/reload` compile a
 * new set aside and swap it in atomically. A set that does not validate is refused; the last
 * good set keeps serving and the error is shown on /readyz and GET /policies.
 */
import { watch, type FSWatcher } from 'node:fs'
import type { Logger } from 'pino'
import { formatProblem, PolicyLoadError } from '../errors.js'
import { loadPolicySet, type PolicyHolder } from './load.js'

export interface ReloadResult {
  ok: boolean
  policies: number
  hash: string
  changed: boolean
  errors: string[]
  warnings: string[]
}

export interface PolicyReloader {
  reload: (trigger: string) => Promise<ReloadResult>
  /** Watches the folder; changes are debounced by `debounceMs`. */
  watch: () => void
  close: () => void
}

export function createPolicyReloader (options: {
  dir: string
  holder: PolicyHolder
  logger: Logger
  debounceMs?: number
  onResult?: (result: ReloadResult) => void
}): PolicyReloader {
  const { dir, holder, logger } = options
  let watcher: FSWatcher | undefined
  let timer: NodeJS.Timeout | undefined

  const once = async (trigger: string): Promise<ReloadResult> => {
    try {
      const { set, warnings } = await loadPolicySet(dir)
      const changed = set.hash !== holder.current.hash
      if (changed) holder.replace(set)
      else holder.clearError()
      const result = { ok: true, policies: set.policies.length, hash: set.hash, changed, errors: [], warnings: warnings.map(formatProblem) }
      logger.info({ trigger, policies: result.policies, hash: set.hash, changed }, changed ? 'policies reloaded' : 'policies unchanged')
      return result
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err
      holder.refuse(err)
      const errors = err.problems.map(formatProblem)
      logger.error({ trigger, errors }, 'policy reload refused: the previous set keeps serving')
      return { ok: false, policies: holder.current.policies.length, hash: holder.current.hash, changed: false, errors, warnings: [] }
    }
  }

  /**
   * One reload at a time. A request while one runs queues exactly one more, which every
   * further request joins until it starts: no change is missed, none is compiled twice.
   */
  let chain: Promise<unknown> = Promise.resolve()
  let queued: Promise<ReloadResult> | undefined
  const reload = (trigger: string): Promise<ReloadResult> => {
    if (queued) return queued
    const next = chain.then(async () => {
      queued = undefined
      const result = await once(trigger)
      options.onResult?.(result)
      return result
    })
    queued = next
    chain = next.catch(() => undefined)
    return next
  }

  return {
    reload,
    watch () {
      watcher = watch(dir, { recursive: true, persistent: false }, (_event, file) => {
        if (file !== null && !/\.(ya?ml|txt)$|(^|\/)\.\.data/.test(String(file))) return
        clearTimeout(timer)
        timer = setTimeout(() => { void reload(`file change: ${String(file)}`) }, options.debounceMs ?? 200)
      })
      watcher.on('error', (err) => logger.error({ err: err.message }, 'policy folder watch failed; use SIGHUP or POST /policies/reload'))
    },
    close () {
      clearTimeout(timer)
      watcher?.close()
    }
  }
}

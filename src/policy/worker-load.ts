/**
 * Loading a policy folder off the event loop, in a worker thread, bounded in time, memory and
 * size: past a limit the load is refused like an invalid set, naming the file the worker was
 * reading. The worker is kept between loads (starting one costs more than a small load) and
 * replaced when a limit stopped it. The compiled set comes back through `fromPortable`.
 */
import { Worker } from 'node:worker_threads'
import { PolicyLoadError, type LoadProblem, type PolicyProblem } from '../errors.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import { fromPortable, type PortablePolicy, type WorkerReply, type WorkerRequest } from './portable.js'
import { DEFAULT_READ_LIMITS, type PolicySource, type ReadLimits } from './source.js'

export interface LoadLimits extends ReadLimits {
  /** Milliseconds a load may take in the worker. */
  timeoutMs: number
  /** Heap the worker may use. */
  maxHeapMb: number
}

export const DEFAULT_LOAD_LIMITS: LoadLimits = { ...DEFAULT_READ_LIMITS, timeoutMs: 20_000, maxHeapMb: 1024 }

export interface WorkerLoaded {
  set: CompiledPolicySet
  warnings: PolicyProblem[]
  /** The policy files of the folder, including those that hold no policy. */
  files: string[]
}

/** A folder with one file replaced or added, checked as a reload would check it, never served. */
export interface TriedFile {
  /** The compiled set, when no problem is an error. */
  set?: CompiledPolicySet
  /** Every problem: errors and warnings. */
  problems: LoadProblem[]
  /** The policy files checked, the tried one included. */
  files: string[]
  /** Whether the tried file took the place of one in the folder. */
  replaced: boolean
}

export interface WorkerLoader {
  load: (dir: string, limits?: Partial<LoadLimits>) => Promise<WorkerLoaded>
  /**
   * Checks `dir` (none: an empty folder) with `replace` in place of the file of that name.
   * Problems are answered, not thrown; a load refused by a limit rejects like `load`.
   */
  tryFile: (dir: string | undefined, replace: PolicySource, limits?: Partial<LoadLimits>) => Promise<TriedFile>
  /** Starts the worker now, so that the first reload does not wait for it. */
  warm: (limits?: Partial<LoadLimits>) => void
  close: () => Promise<void>
}

const here = import.meta.url

/**
 * The worker's entry. Compiled, it is load-worker.js. Run from TypeScript sources (tests,
 * `node --import tsx`), it is load-worker.ts, and Node 20 does not apply the parent's `--import`
 * loader to a worker's entry: a two-line bootstrap registers tsx in the worker first.
 */
function workerEntry (): { entry: string | URL, eval: boolean } {
  if (!here.endsWith('.ts')) return { entry: new URL('./load-worker.js', here), eval: false }
  const target = JSON.stringify(new URL('./load-worker.ts', here).href)
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'))
  return { entry: `import(${tsx}).then(({ register }) => { register(); return import(${target}) })`, eval: true }
}

const refused = (file: string, message: string): PolicyLoadError =>
  new PolicyLoadError([{ file, line: 1, col: 1, field: '(load)', code: 'unreadable', message, severity: 'error' }])

const send = (w: Worker, request: WorkerRequest): void => { w.postMessage(request) }

const CHUNK = 250

/** Pulls the compiled policies from the worker, one chunk per message, yielding between chunks. */
async function pull (w: Worker, id: number, count: number, timeoutMs: number): Promise<PortablePolicy[]> {
  const policies: PortablePolicy[] = []
  try {
    for (let from = 0; from < count; from += CHUNK) {
      const chunk = await new Promise<PortablePolicy[]>((resolve, reject) => {
        const timer = setTimeout(() => { w.off('message', onMessage); reject(refused('(folder)', 'the loading worker stopped answering')) }, timeoutMs)
        const onMessage = (message: WorkerReply): void => {
          if (message.id !== id || message.type !== 'chunk') return
          clearTimeout(timer)
          w.off('message', onMessage)
          resolve(message.policies)
        }
        w.on('message', onMessage)
        send(w, { type: 'chunk', id, from, to: Math.min(count, from + CHUNK) })
      })
      for (const p of chunk) policies.push(p)
    }
  } finally {
    send(w, { type: 'release', id })
  }
  if (policies.length !== count) throw refused('(folder)', 'the loading worker lost the compiled set')
  return policies
}

/** One worker, one load at a time (loads queue); a load past its limits ends the worker. */
export function createWorkerLoader (): WorkerLoader {
  let worker: Worker | undefined
  let heapMb = 0
  let nextId = 1
  let chain: Promise<unknown> = Promise.resolve()

  const spawn = (maxHeapMb: number): Worker => {
    if (worker && heapMb === maxHeapMb) return worker
    void worker?.terminate()
    heapMb = maxHeapMb
    const { entry, eval: isEval } = workerEntry()
    worker = new Worker(entry, {
      eval: isEval,
      resourceLimits: { maxOldGenerationSizeMb: maxHeapMb, maxYoungGenerationSizeMb: 64, stackSizeMb: 4 },
      stdout: false,
      stderr: false
    })
    worker.unref() // an idle loader never keeps the process alive
    return worker
  }

  type Done = WorkerReply & { type: 'done', worker: Worker }
  const once = (what: { dir?: string, replace?: PolicySource }, l: LoadLimits): Promise<Done> => new Promise((resolve, reject) => {
    const w = spawn(l.maxHeapMb)
    const id = nextId++
    let current = '(folder)'
    const cleanup = (): void => {
      clearTimeout(timer)
      w.off('message', onMessage)
      w.off('error', onError)
      w.off('exit', onExit)
    }
    const kill = (): void => { if (worker === w) worker = undefined; void w.terminate() }
    const timer = setTimeout(() => {
      cleanup(); kill()
      reject(refused(current, `loading took longer than ${l.timeoutMs} ms (stopped while reading this file): refused`))
    }, l.timeoutMs)
    const onMessage = (message: WorkerReply): void => {
      if (message.id !== id || message.type === 'chunk') return
      if (message.type === 'progress') { current = message.file; return }
      cleanup()
      if (message.type === 'failed') reject(refused(what.dir ?? '(folder)', message.message))
      else resolve({ ...message, worker: w })
    }
    const onError = (err: Error): void => {
      cleanup(); kill()
      const memory = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
      reject(refused(current, memory ? `loading needed more than ${l.maxHeapMb} MB (stopped while reading this file): refused` : `loading failed: ${err.message.split('\n')[0]!}`))
    }
    const onExit = (code: number): void => {
      cleanup(); if (worker === w) worker = undefined
      reject(refused(current, `the loading worker stopped (exit code ${code})`))
    }
    w.on('message', onMessage)
    w.on('error', onError)
    w.on('exit', onExit)
    send(w, { type: 'load', id, ...what, limits: { maxFileBytes: l.maxFileBytes, maxFolderBytes: l.maxFolderBytes, maxFiles: l.maxFiles } })
  })

  /** One load after the other: the compiled set, when the worker compiled one without errors. */
  const queued = (what: { dir?: string, replace?: PolicySource }, limits: Partial<LoadLimits>): Promise<{ done: Done, set?: CompiledPolicySet }> => {
    const l = { ...DEFAULT_LOAD_LIMITS, ...limits }
    const result = chain.then(() => once(what, l)).then(async done => {
      if (done.set === undefined || done.problems.some(p => p.severity === 'error')) return { done }
      const { count, ...rest } = done.set
      const policies = await pull(done.worker, done.id, count, l.timeoutMs)
      return { done, set: await fromPortable({ ...rest, policies }) }
    })
    chain = result.catch(() => undefined)
    return result
  }

  return {
    warm (limits = {}) { spawn({ ...DEFAULT_LOAD_LIMITS, ...limits }.maxHeapMb) },
    async load (dir, limits = {}) {
      const { done, set } = await queued({ dir }, limits)
      if (set === undefined) throw new PolicyLoadError(done.problems.filter(p => p.severity === 'error'))
      return { set, warnings: done.problems.filter(p => p.severity === 'warning'), files: done.files }
    },
    async tryFile (dir, replace, limits = {}) {
      const { done, set } = await queued({ ...(dir === undefined ? {} : { dir }), replace }, limits)
      return { ...(set ? { set } : {}), problems: done.problems, files: done.files, replaced: done.replaced }
    },
    async close () {
      const w = worker
      worker = undefined
      await w?.terminate()
    }
  }
}

let shared: WorkerLoader | undefined

/** The process's loader (one worker, created on first use). */
export const sharedWorkerLoader = (): WorkerLoader => (shared ??= createWorkerLoader())

/** Loads `dir` with the process's loader; rejects with a PolicyLoadError naming every problem. */
export const loadInWorker = (dir: string, limits?: Partial<LoadLimits>): Promise<WorkerLoaded> => sharedWorkerLoader().load(dir, limits)

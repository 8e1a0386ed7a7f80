/**
 * The loading worker: reads, parses, validates, compiles, lints and checks the conditions of a
 * policy folder off the event loop, then sends back the compiled set in a form that crosses
 * threads (CEL programs are functions: they travel as their source and are compiled again
 * by the main thread, from a cache, in time slices). Before each file it says which one it is
 * parsing, so a load stopped by the time limit names the file.
 */
import { parentPort } from 'node:worker_threads'
import { checkSources } from './load.js'
import { readPolicyFolder, setParseObserver, type FolderSources } from './source.js'
import { toPortable, type PortableSet, type WorkerReply, type WorkerRequest } from './portable.js'

const post = (message: WorkerReply): void => parentPort!.postMessage(message)

/** The compiled set of the last load, until the main thread has pulled its policies. */
let pending: { id: number, set: PortableSet } | undefined

parentPort!.on('message', (request: WorkerRequest) => {
  if (request.type === 'chunk') {
    post({ id: request.id, type: 'chunk', policies: pending?.id === request.id ? pending.set.policies.slice(request.from, request.to) : [] })
    return
  }
  if (request.type === 'release') {
    if (pending?.id === request.id) pending = undefined
    return
  }
  const { id, dir, replace, limits } = request
  pending = undefined
  void (async () => {
    try {
      setParseObserver(undefined)
      // A candidate file (the playground's) joins the folder as it is on disk, in place of the
      // file of the same name; where the folder cannot be read, the file is tried alone.
      const read: FolderSources = dir === undefined
        ? { policies: [], lists: [] }
        : await readPolicyFolder(dir, limits).catch((err: unknown) => { if (replace) return { policies: [], lists: [] }; throw err })
      const replaced = replace !== undefined && read.policies.some(s => s.file === replace.file)
      const sources: FolderSources = replace === undefined
        ? read
        : {
            lists: read.lists,
            policies: [...read.policies.filter(s => s.file !== replace.file), replace],
            // What reading found about the file on disk (too large, say) is not the candidate's.
            ...(read.problems ? { problems: read.problems.filter(p => p.file !== replace.file) } : {})
          }
      setParseObserver(file => post({ id, type: 'progress', file }))
      const { set, problems } = checkSources(sources)
      let summary: (Omit<PortableSet, 'policies'> & { count: number }) | undefined
      if (set) {
        const portable = toPortable(set, sources.lists)
        pending = { id, set: portable }
        const { policies, ...rest } = portable
        summary = { ...rest, count: policies.length }
      }
      post({ id, type: 'done', problems, files: sources.policies.map(s => s.file), replaced, ...(summary ? { set: summary } : {}) })
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      post({ id, type: 'failed', message: e.code === 'ENOENT' ? `no such folder: ${dir ?? ''}` : `cannot read: ${e.message}` })
    } finally {
      setParseObserver(undefined)
    }
  })()
})

/**
 * Reading a policy folder: YAML files parsed with their positions, and IP list files.
 * Everything here is I/O and parsing; validation and compilation live beside it.
 *
 * YAML goes through js-yaml (its event parser, then its constructor: the fast path, about
 * 0.15 s for 10,000 policies) and, only when js-yaml refuses a file, through `yaml`, whose
 * messages carry better positions. Positions of fields are read from js-yaml's events, which
 * carry source offsets, so locating a policy never parses a file twice.
 */
import { open, readdir } from 'node:fs/promises'
import { constants } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { constructFromEvents, CORE_SCHEMA, EVENT_ID, getScalarValue, parseEvents, SCALAR_STYLE, type Event } from 'js-yaml'
import { LineCounter, parseDocument } from 'yaml'
import type { PolicyProblem, ProblemCode } from '../errors.js'

export interface PolicySource {
  /** Path relative to the policy folder, with `/` separators: what messages show. */
  file: string
  text: string
}

export interface ListSource {
  name: string
  file: string
  text: string
}

export interface FolderSources {
  policies: PolicySource[]
  lists: ListSource[]
  /** What reading found: files over the size limits (errors), special files skipped (warnings). */
  problems?: PolicyProblem[]
}

/** Bounds on what a folder may hold, so that no file can make a load unbounded. */
export interface ReadLimits {
  maxFileBytes: number
  maxFolderBytes: number
  maxFiles: number
}

export const DEFAULT_READ_LIMITS: ReadLimits = { maxFileBytes: 8 * 1024 * 1024, maxFolderBytes: 64 * 1024 * 1024, maxFiles: 10_000 }

export type Path = Array<string | number>

/** A parsed file that can answer "where is this field?". */
export interface ParsedFile {
  file: string
  data: unknown
  locate: (path: Path, key?: boolean) => { line: number, col: number }
}

const isPolicyFile = (name: string): boolean =>
  /\.ya?ml$/.test(name) && !/\.test\.ya?ml$/.test(name)

const problem = (file: string, field: string, code: ProblemCode, message: string, severity: 'error' | 'warning' = 'error'): PolicyProblem =>
  ({ file, line: 1, col: 1, field, code, message, severity })

/**
 * Reads one file without ever blocking: opened non-blocking (a FIFO opens at once instead of
 * waiting for a writer), then only a regular file is read, and at most `maxBytes + 1` bytes.
 */
async function readRegular (full: string, maxBytes: number): Promise<{ text: string } | { special: string } | { tooLarge: number }> {
  const handle = await open(full, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) return { special: stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : stat.isDirectory() ? 'a directory' : 'a device or special file' }
    if (stat.size > maxBytes) return { tooLarge: stat.size }
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1)
    let length = 0
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
    }
    if (length > maxBytes) return { tooLarge: length }
    return { text: buffer.subarray(0, length).toString('utf8') }
  } finally {
    await handle.close()
  }
}

/**
 * Lists the policy and list files below `dir`. Hidden entries are skipped: Kubernetes
 * ConfigMap volumes hold `..data` links that would otherwise make every file appear twice.
 * Files that are not regular files (a FIFO, a socket, a device) are skipped with a warning,
 * and a file or folder past the size limits is an error naming the file.
 */
export async function readPolicyFolder (dir: string, limits: ReadLimits = DEFAULT_READ_LIMITS): Promise<FolderSources> {
  const policies: PolicySource[] = []
  const lists: ListSource[] = []
  const problems: PolicyProblem[] = []
  let total = 0
  let files = 0
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true })
    entries.sort((a, b) => a.name.localeCompare(b.name))
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue
      const full = join(current, entry.name)
      const rel = relative(dir, full).split(sep).join('/')
      if (entry.isDirectory()) {
        await walk(full)
        continue
      }
      const isList = rel.startsWith('lists/') && rel.split('/').length === 2 && entry.name.endsWith('.txt')
      if (!isList && !isPolicyFile(entry.name)) continue
      if (++files > limits.maxFiles) {
        if (files === limits.maxFiles + 1) problems.push(problem(rel, '(folder)', 'too_large', `more than ${limits.maxFiles} policy and list files: refused`))
        continue
      }
      let read
      try {
        read = await readRegular(full, limits.maxFileBytes)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue // removed while the folder was read, or a dangling link
        throw err
      }
      if ('special' in read) {
        problems.push(problem(rel, '(file)', 'not_a_file', `skipped: ${read.special}, not a regular file`, 'warning'))
        continue
      }
      if ('tooLarge' in read) {
        problems.push(problem(rel, '(file)', 'too_large', `${read.tooLarge} bytes: larger than the limit of ${limits.maxFileBytes} bytes per file`))
        continue
      }
      total += read.text.length
      if (total > limits.maxFolderBytes) {
        problems.push(problem(rel, '(folder)', 'too_large', `the folder passes the limit of ${limits.maxFolderBytes} bytes at this file`))
        return
      }
      if (isList) lists.push({ name: entry.name.slice(0, -4), file: rel, text: read.text })
      else policies.push({ file: rel, text: read.text })
    }
  }
  await walk(dir)
  return { policies, lists, problems }
}

/** Bounds for the YAML parser: nesting depth and aliases (a billion-laughs file is refused). */
const MAX_DEPTH = 64
const MAX_ALIASES = 100

let parseObserver: ((file: string) => void) | undefined

/** Told the name of each file before it is parsed or checked (the loading worker reports progress with it). */
export function setParseObserver (observer: ((file: string) => void) | undefined): void { parseObserver = observer }

/** Says which file the work that follows belongs to (see setParseObserver). */
export function working (file: string): void { parseObserver?.(file) }

/**
 * Parses one YAML file; syntax errors become problems with their positions.
 */
export function parseSource (source: PolicySource, problems: PolicyProblem[]): ParsedFile | undefined {
  parseObserver?.(source.file)
  let events: Event[]
  let data: unknown
  try {
    events = parseEvents(source.text, { maxDepth: MAX_DEPTH })
    const docs = constructFromEvents(events, { source: source.text, schema: CORE_SCHEMA, maxAliases: MAX_ALIASES })
    if (docs.length > 1) {
      problems.push({ ...position(source.text, secondDocument(events)), file: source.file, field: '(yaml)', code: 'yaml_syntax', message: 'a policy file holds one YAML document', severity: 'error' })
      return undefined
    }
    data = docs[0]
    const budget = events.length * 2 + 10_000
    if (expandsBeyond(data, budget)) {
      problems.push({ file: source.file, line: 1, col: 1, field: '(yaml)', code: 'too_large', message: `aliases expand to more than ${budget} values (a "billion laughs" file): refused`, severity: 'error' })
      return undefined
    }
  } catch (err) {
    reportYamlError(source, err, problems)
    return undefined
  }
  let tree: Located | undefined
  let lines: number[] | undefined
  return {
    file: source.file,
    data: data ?? {},
    locate: (path, key = false) => {
      tree ??= buildTree(events, source.text)
      lines ??= lineStarts(source.text)
      return linePos(lines, offsetIn(tree, path, key))
    }
  }
}

/**
 * `yaml` gives the clearer message, but can take seconds on a large malformed file (a 0.9 MB
 * one took 19 s): above this size js-yaml's own message is reported.
 */
const YAML_MESSAGES_MAX_BYTES = 64 * 1024

/**
 * Whether the file stays within `limit` levels of nesting, over-estimated: each leading space,
 * `-`, `?` or `:` of a line counts as a level, and so does each open `[` or `{` (in strings and
 * comments too; an over-estimate only costs the clearer message). `yaml` recurses once per
 * level: a file nested thousands deep overflows its stack, and V8 has been seen to abort the
 * whole process (RegExpCompiler out of memory) rather than throw, so such a file never reaches it.
 */
function nestingWithin (text: string, limit: number): boolean {
  let flow = 0
  let block = 0
  let lineStart = true
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x0a) { lineStart = true; block = 0; continue }
    if (lineStart && (c === 0x20 || c === 0x09 || c === 0x2d || c === 0x3f || c === 0x3a)) {
      if (++block + flow > limit) return false
      continue
    }
    lineStart = false
    if (c === 0x5b || c === 0x7b) { if (++flow + block > limit) return false } else if ((c === 0x5d || c === 0x7d) && flow > 0) flow--
  }
  return true
}

/** js-yaml refused the file: `yaml` says where and why when it agrees; else js-yaml's own message. */
function reportYamlError (source: PolicySource, err: unknown, problems: PolicyProblem[]): void {
  if (source.text.length <= YAML_MESSAGES_MAX_BYTES && nestingWithin(source.text, 2 * MAX_DEPTH) && reportWithYaml(source, problems)) return
  const mark = (err as { mark?: { line?: number, column?: number } }).mark
  const message = String((err as Error)?.message ?? err).split('\n')[0]!.replace(/\s*\(\d+:\d+\)$/, '')
  problems.push({
    file: source.file,
    line: (mark?.line ?? 0) + 1,
    col: (mark?.column ?? 0) + 1,
    field: '(yaml)',
    code: 'yaml_syntax',
    message: err instanceof RangeError ? 'nested too deeply' : message,
    severity: 'error'
  })
}

function reportWithYaml (source: PolicySource, problems: PolicyProblem[]): boolean {
  const lineCounter = new LineCounter()
  const doc = parseDocument(source.text, { lineCounter, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const { line, col } = lineCounter.linePos(error.pos[0])
      problems.push({ file: source.file, line, col, field: '(yaml)', code: 'yaml_syntax', message: error.message.split('\n')[0]!, severity: 'error' })
    }
    return true
  }
  return false
}

/** Whether walking `data` (aliases followed, as validation does) visits more than `budget` values. */
function expandsBeyond (data: unknown, budget: number): boolean {
  const stack: unknown[] = [data]
  let visited = 0
  while (stack.length > 0) {
    const value = stack.pop()
    if (++visited > budget) return true
    if (Array.isArray(value)) { for (const item of value) stack.push(item) } else if (value !== null && typeof value === 'object') { for (const key in value) stack.push((value as Record<string, unknown>)[key]) }
  }
  return false
}

/* A light tree of the document built from js-yaml's events: only offsets, keys and children. A node
   starts where `yaml` says it does: at its content (after an anchor or a tag), a quoted scalar at its quote. */
type Located =
  | { kind: 'map', start: number, keys: string[], keyStarts: number[], values: Located[] }
  | { kind: 'seq', start: number, items: Located[] }
  | { kind: 'leaf', start: number }

function buildTree (events: Event[], text: string): Located {
  let i = 0
  const next = (): Located | undefined => {
    const e = events[i++]
    if (e === undefined || e.type === EVENT_ID.POP) return undefined
    switch (e.type) {
      case EVENT_ID.DOCUMENT: {
        const root = next()
        while (i < events.length && events[i]!.type !== EVENT_ID.POP) next()
        i++
        return root ?? { kind: 'leaf', start: 0 }
      }
      case EVENT_ID.MAPPING: {
        const node: Located = { kind: 'map', start: e.start, keys: [], keyStarts: [], values: [] }
        for (;;) {
          const keyEvent = events[i]
          const key = next()
          if (key === undefined) break
          const value = next() ?? { kind: 'leaf', start: key.start }
          node.keys.push(keyEvent?.type === EVENT_ID.SCALAR ? getScalarValue(text, keyEvent) : '')
          node.keyStarts.push(key.start)
          node.values.push(value)
        }
        return node
      }
      case EVENT_ID.SEQUENCE: {
        const node: Located = { kind: 'seq', start: e.start, items: [] }
        for (let item = next(); item !== undefined; item = next()) node.items.push(item)
        return node
      }
      case EVENT_ID.SCALAR: {
        // A quoted scalar's value starts after its quote; the node starts at the quote.
        const quoted = e.style === SCALAR_STYLE.SINGLE_QUOTED || e.style === SCALAR_STYLE.DOUBLE_QUOTED
        if (quoted) return { kind: 'leaf', start: e.valueStart - 1 }
        // A block scalar starts at its `|` or `>`, before its content.
        if (e.style === SCALAR_STYLE.LITERAL_BLOCK || e.style === SCALAR_STYLE.FOLDED_BLOCK) {
          const at = text.lastIndexOf(e.style === SCALAR_STYLE.LITERAL_BLOCK ? '|' : '>', e.valueStart)
          return { kind: 'leaf', start: at >= 0 ? at : e.valueStart }
        }
        return { kind: 'leaf', start: e.valueStart }
      }
      default: // an alias: at its `*`
        return { kind: 'leaf', start: Math.max(0, e.anchorStart - 1) }
    }
  }
  return next() ?? { kind: 'leaf', start: 0 }
}

/** The offset of the deepest node that exists along `path` (or of its key). */
function offsetIn (root: Located, path: Path, key: boolean): number {
  let node = root
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!
    if (node.kind === 'map') {
      const at = node.keys.lastIndexOf(String(segment))
      if (at < 0) break
      if (key && i === path.length - 1) return node.keyStarts[at]!
      node = node.values[at]!
    } else if (node.kind === 'seq' && typeof segment === 'number' && node.items[segment] !== undefined) {
      node = node.items[segment]
    } else {
      break
    }
  }
  return node.start
}

function secondDocument (events: Event[]): number {
  let documents = 0
  for (const e of events) {
    if (e.type === EVENT_ID.DOCUMENT && ++documents === 2) return 0
    if (documents === 2 && 'start' in e) return e.start
    if (documents === 2 && 'valueStart' in e) return e.valueStart
  }
  return 0
}

function position (text: string, offset: number): { line: number, col: number } {
  return linePos(lineStarts(text), offset)
}

function lineStarts (text: string): number[] {
  const starts = [0]
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1)
  return starts
}

/** 1-based line and column of `offset`. */
function linePos (starts: number[], offset: number): { line: number, col: number } {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (starts[mid]! <= offset) lo = mid
    else hi = mid - 1
  }
  return { line: lo + 1, col: offset - starts[lo]! + 1 }
}

/**
 * Reading a policy folder: YAML files parsed with their positions, and IP list files.
 * Everything here is I/O and parsing; validation and compilation live beside it.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { LineCounter, parseDocument, isMap, isScalar, type Document, type Node } from 'yaml'
import type { PolicyProblem } from '../errors.js'
import { parseYamlSubset } from './yaml-subset.js'

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
}

export type Path = Array<string | number>

/** A parsed file that can answer "where is this field?". */
export interface ParsedFile {
  file: string
  data: unknown
  locate: (path: Path, key?: boolean) => { line: number, col: number }
}

const isPolicyFile = (name: string): boolean =>
  /\.ya?ml$/.test(name) && !/\.test\.ya?ml$/.test(name)

/**
 * Lists the policy and list files below `dir`. Hidden entries are skipped: Kubernetes
 * ConfigMap volumes hold `..data` links that would otherwise make every file appear twice.
 */
export async function readPolicyFolder (dir: string): Promise<FolderSources> {
  const policies: PolicySource[] = []
  const lists: ListSource[] = []
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true })
    entries.sort((a, b) => a.name.localeCompare(b.name))
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue
      const full = join(current, entry.name)
      const rel = relative(dir, full).split(sep).join('/')
      if (entry.isDirectory()) {
        await walk(full)
      } else if (rel.startsWith('lists/') && rel.split('/').length === 2 && entry.name.endsWith('.txt')) {
        lists.push({ name: entry.name.slice(0, -4), file: rel, text: await readFile(full, 'utf8') })
      } else if (isPolicyFile(entry.name) && (entry.isFile() || entry.isSymbolicLink())) {
        policies.push({ file: rel, text: await readFile(full, 'utf8') })
      }
    }
  }
  await walk(dir)
  return { policies, lists }
}

/**
 * Parses one YAML file; syntax errors become problems with their positions. Most files are read
 * by the fast subset reader (yaml-subset.ts); `yaml` parses the others, and parses a file read
 * the fast way again, with positions, only when a problem or warning must say where a field is.
 */
export function parseSource (source: PolicySource, problems: PolicyProblem[]): ParsedFile | undefined {
  const fast = parseYamlSubset(source.text)
  if (fast === undefined) return parseWithYaml(source, problems)
  let full: YamlDocument | undefined
  return {
    file: source.file,
    data: fast.data ?? {},
    locate: (path, key = false) => {
      if (!key) {
        // Where a mapping starts (e.g. a policy, for its line) is known without `yaml`.
        const node = nodeAt(fast.data, path)
        const start = node === undefined ? undefined : fast.mapStart.get(node)
        if (start !== undefined) return linePos(fast.lineStarts, start)
      }
      // The subset reader answered, so `yaml` finds no error in this text.
      full ??= yamlDocument(source.text)
      return full.position(offsetOf(full.doc, path, key))
    }
  }
}

/** The object at the end of `path` when every segment exists (a key of a mapping, an index of a sequence). */
function nodeAt (data: unknown, path: Path): object | undefined {
  let node = data
  for (const segment of path) {
    if (Array.isArray(node)) {
      if (typeof segment !== 'number' || segment < 0 || segment >= node.length) return undefined
      node = node[segment]
    } else if (node !== null && typeof node === 'object') {
      if (typeof segment !== 'string' || !Object.hasOwn(node, segment)) return undefined
      node = (node as Record<string, unknown>)[segment]
    } else {
      return undefined
    }
  }
  return node !== null && typeof node === 'object' ? node : undefined
}

/** 1-based line and column of `offset`, as yaml's LineCounter gives them. */
function linePos (lineStarts: number[], offset: number): { line: number, col: number } {
  let lo = 0
  let hi = lineStarts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (lineStarts[mid]! <= offset) lo = mid
    else hi = mid - 1
  }
  return { line: lo + 1, col: offset - lineStarts[lo]! + 1 }
}

interface YamlDocument {
  doc: Document
  position: (offset: number) => { line: number, col: number }
}

function yamlDocument (text: string): YamlDocument {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false })
  const position = (offset: number): { line: number, col: number } => {
    const pos = lineCounter.linePos(offset)
    return { line: pos.line, col: pos.col }
  }
  return { doc, position }
}

function parseWithYaml (source: PolicySource, problems: PolicyProblem[]): ParsedFile | undefined {
  const { doc, position } = yamlDocument(source.text)
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const { line, col } = position(error.pos[0])
      problems.push({ file: source.file, line, col, field: '(yaml)', message: error.message.split('\n')[0]!, severity: 'error' })
    }
    return undefined
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    problems.push({ file: source.file, line: 1, col: 1, field: '(yaml)', message: (err as Error).message, severity: 'error' })
    return undefined
  }
  return {
    file: source.file,
    data: data ?? {},
    locate: (path, key = false) => position(offsetOf(doc, path, key))
  }
}

/** The offset of the deepest node that exists along `path` (or of its key). */
function offsetOf (doc: Document, path: Path, key: boolean): number {
  let node: Node | null = doc.contents
  let offset = node?.range?.[0] ?? 0
  for (let i = 0; i < path.length; i++) {
    if (node === null || !('items' in node)) break
    const segment = path[i]!
    if (isMap(node)) {
      const pair = node.items.find(p => (isScalar(p.key) ? p.key.value : p.key) === segment)
      if (!pair) break
      if (key && i === path.length - 1 && isScalar(pair.key)) return pair.key.range?.[0] ?? offset
      node = (pair.value as Node | null) ?? null
      offset = node?.range?.[0] ?? (isScalar(pair.key) ? pair.key.range?.[0] ?? offset : offset)
    } else {
      const item = (node.items as unknown[])[segment as number] as Node | undefined
      if (!item) break
      node = item
      offset = item.range?.[0] ?? offset
    }
  }
  return offset
}

/**
 * Action globs compiled into a segment trie, so matching costs the depth of the action, not
 * the number of policies: `*` matches one segment, `**` one or more.
 */

interface TrieNode<T> {
  exact: Map<string, TrieNode<T>>
  star?: TrieNode<T>
  globstar?: TrieNode<T>
  values: T[]
}

const newNode = <T>(): TrieNode<T> => ({ exact: new Map(), values: [] })

export class ActionIndex<T> {
  private readonly root: TrieNode<T> = newNode()
  private size = 0

  add (pattern: string, value: T): void {
    let node = this.root
    for (const segment of pattern.split('.')) {
      if (segment === '**') node = node.globstar ??= newNode()
      else if (segment === '*') node = node.star ??= newNode()
      else {
        let next = node.exact.get(segment)
        if (!next) { next = newNode(); node.exact.set(segment, next) }
        node = next
      }
    }
    node.values.push(value)
    this.size++
  }

  get isEmpty (): boolean { return this.size === 0 }

  /** Every value whose pattern matches `action`, each once, in insertion order of discovery. */
  match (action: string): T[] {
    if (this.size === 0) return []
    const out = new Set<T>()
    collect(this.root, action.split('.'), 0, out)
    return [...out]
  }
}

function collect<T> (node: TrieNode<T>, segments: string[], i: number, out: Set<T>): void {
  if (i === segments.length) {
    for (const v of node.values) out.add(v)
    return
  }
  const exact = node.exact.get(segments[i]!)
  if (exact) collect(exact, segments, i + 1, out)
  if (node.star) collect(node.star, segments, i + 1, out)
  if (node.globstar) {
    // `**` swallows one or more segments: try every split point.
    for (let j = i + 1; j <= segments.length; j++) collect(node.globstar, segments, j, out)
  }
}

/** Direct glob test for one pattern; used by tools that do not need the index. */
export function actionMatches (pattern: string, action: string): boolean {
  const index = new ActionIndex<true>()
  index.add(pattern, true)
  return index.match(action).length > 0
}

/* ---------- the action grammar, written once for the request schema, policies and gateway routes ---------- */

/** One segment of an action: letters, digits, `:`, `/`, `-`. */
const SEGMENT = '[A-Za-z0-9:/-]+'
/** The longest action (and action pattern) accepted. */
export const ACTION_MAX_LENGTH = 200
/** The request grammar (docs/api.md#post-decide): non-empty segments separated by dots, as a JSON Schema `pattern`. */
export const ACTION_PATTERN = `^${SEGMENT}(\\.${SEGMENT})*$`
/** A policy's action pattern: the same segments, or `*` (one segment) / `**` (one or more). */
export const ACTION_GLOB_PATTERN = `^(\\*\\*|\\*|${SEGMENT})(\\.(\\*\\*|\\*|${SEGMENT}))*$`
export const ACTION_REGEX = new RegExp(ACTION_PATTERN)
export const isValidAction = (action: string): boolean => action.length >= 1 && action.length <= ACTION_MAX_LENGTH && ACTION_REGEX.test(action)

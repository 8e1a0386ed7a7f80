/**
 * A fast reader for the plain subset of YAML that policy files are written in: block mappings
 * and sequences, single-line flow collections, plain and quoted single-line scalars, literal
 * and folded block scalars (their common forms), comments. It gives what `yaml` (YAML 1.2,
 * core schema, unique keys) would give for such a text, and gives up (returns undefined) on
 * anything else: anchors, tags, multi-line plain or quoted scalars or flow collections, unusual
 * block scalars, tabs, a duplicate key, a second document, anything it does not know to be
 * valid. The caller then parses the text with `yaml`, which stays the reference (and the one
 * that reports errors with their positions): this reader only has to be right when it answers,
 * and test/unit/yaml-subset.test.ts compares the two on generated documents.
 *
 * It is about 20 times faster than `yaml`, which mattered for 10,000 policies (issue #5).
 */

export interface SubsetDocument {
  data: unknown
  /** The offset where each mapping starts, as `yaml` reports its node's range (the first key, or `{`). */
  mapStart: Map<object, number>
  /** Offsets of line starts, to turn an offset into a line and column. */
  lineStarts: number[]
}

/** Characters this reader leaves to `yaml`: tabs, controls, BOM, Unicode line breaks, a CR not before LF. */
// eslint-disable-next-line no-control-regex
const UNSUPPORTED = /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f\u0085\u2028\u2029\ufeff]|\r(?!\n)/

export function parseYamlSubset (text: string): SubsetDocument | undefined {
  if (UNSUPPORTED.test(text)) return undefined
  try {
    return new SubsetParser(text).document()
  } catch {
    // Outside the subset (or deeper than the stack): `yaml` decides.
    return undefined
  }
}

/** Outside the subset. */
const BAIL = new Error('outside the YAML subset')
const bail = (): never => { throw BAIL }

const SPACE = 32
const DQUOTE = 34
const HASH = 35
const SQUOTE = 39
const COMMA = 44
const DASH = 45
const DOT = 46
const COLON = 58
const LBRACKET = 91
const BACKSLASH = 92
const RBRACKET = 93
const LBRACE = 123
const PIPE = 124
const GT = 62
const RBRACE = 125

/** c-indicator characters (YAML 1.2 §5.3): a plain scalar cannot start with one (`-` aside, handled apart). */
const INDICATOR = new Set([...'-?:,[]{}#&*!|>\'"%@`'].map(c => c.charCodeAt(0)))
const isFlowIndicator = (c: number): boolean => c === COMMA || c === LBRACKET || c === RBRACKET || c === LBRACE || c === RBRACE

/* The core schema's tests, in the order `yaml` tries them (yaml/dist/schema/core). */
const NULL = /^(?:~|[Nn]ull|NULL)?$/
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/
const INT_OCT = /^0o[0-7]+$/
const INT = /^[-+]?[0-9]+$/
const INT_HEX = /^0x[0-9a-fA-F]+$/
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/

/** A plain scalar's value under the core schema. */
export function resolvePlain (s: string): unknown {
  const c = s.charCodeAt(0)
  // Most scalars start with a letter that no tag test accepts: a string.
  if ((c >= 97 && c <= 122 && c !== 110 && c !== 116 && c !== 102) || (c >= 65 && c <= 90 && c !== 78 && c !== 84 && c !== 70)) return s
  if (NULL.test(s)) return null
  if (BOOL.test(s)) return s[0] === 't' || s[0] === 'T'
  if (INT_OCT.test(s)) return parseInt(s.substring(2), 8)
  if (INT.test(s)) return parseInt(s, 10)
  if (INT_HEX.test(s)) return parseInt(s.substring(2), 16)
  if (FLOAT_NAN.test(s)) return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY
  if (FLOAT_EXP.test(s) || FLOAT.test(s)) return parseFloat(s)
  return s
}

const ESCAPES: Record<string, string> = {
  0: '\0', a: '\x07', b: '\b', e: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
  N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029', ' ': ' ', '"': '"', '/': '/', '\\': '\\'
}

interface Scanned { value: unknown, end: number }

class SubsetParser {
  private readonly starts: number[] = []
  private readonly ends: number[] = []
  private readonly mapStart = new Map<object, number>()
  /** The current line. */
  private li = 0

  constructor (private readonly text: string) {
    let s = 0
    for (;;) {
      const nl = text.indexOf('\n', s)
      const e = nl === -1 ? text.length : nl
      this.starts.push(s)
      this.ends.push(e > s && text.charCodeAt(e - 1) === 13 ? e - 1 : e)
      if (nl === -1) break
      s = nl + 1
    }
  }

  document (): SubsetDocument {
    let indent = this.nextContent(true)
    if (indent < 0) bail()
    if (indent === 0 && this.isMarker(this.starts[this.li]!, DASH)) {
      // A leading `---` (nothing after it but a comment): the document's contents follow.
      const start = this.starts[this.li]!
      const p = this.skipSpaces(start + 3, this.ends[this.li]!)
      if (p < this.ends[this.li]! && (p === start + 3 || this.text.charCodeAt(p) !== HASH)) bail()
      this.li++
      indent = this.nextContent(false)
      if (indent < 0) bail()
    }
    const data = this.block(indent)
    if (this.nextContent(false) >= 0) bail()
    return { data, mapStart: this.mapStart, lineStarts: this.starts }
  }

  /** `---` or `...` at the start of a line, alone or before a space. */
  private isMarker (p: number, c: number): boolean {
    const t = this.text
    return t.charCodeAt(p) === c && t.charCodeAt(p + 1) === c && t.charCodeAt(p + 2) === c &&
      (p + 3 === this.ends[this.li] || t.charCodeAt(p + 3) === SPACE)
  }

  /** Moves to the next line with content (not blank, not only a comment); its indentation, or -1 at the end. */
  private nextContent (markerAllowed = false): number {
    const t = this.text
    while (this.li < this.starts.length) {
      const s = this.starts[this.li]!
      const e = this.ends[this.li]!
      let p = s
      while (p < e && t.charCodeAt(p) === SPACE) p++
      if (p < e && t.charCodeAt(p) !== HASH) {
        if (p === s && !markerAllowed && (this.isMarker(s, DASH) || this.isMarker(s, DOT))) bail()
        return p - s
      }
      this.li++
    }
    return -1
  }

  private skipSpaces (p: number, e: number): number {
    while (p < e && this.text.charCodeAt(p) === SPACE) p++
    return p
  }

  /** A `- ` (or a lone `-`) at `p`. */
  private isSeqItem (p: number, e: number): boolean {
    return this.text.charCodeAt(p) === DASH && (p + 1 === e || this.text.charCodeAt(p + 1) === SPACE)
  }

  /** The block node whose first line is the current one, indented by `indent`. */
  private block (indent: number): unknown {
    const p = this.starts[this.li]! + indent
    const e = this.ends[this.li]!
    if (this.isSeqItem(p, e)) return this.seq(indent)
    const key = this.key(p, e)
    if (key === undefined) return bail()
    return this.map(indent, p, key)
  }

  /** A block mapping at column `col`, whose first key (at `p`, on the current line) is read. */
  private map (col: number, p: number, first: { key: string, after: number }): Record<string, unknown> {
    const obj: Record<string, unknown> = {}
    this.mapStart.set(obj, p)
    let key = first
    for (;;) {
      if (Object.hasOwn(obj, key.key)) bail()
      set(obj, key.key, this.value(key.after, col))
      const indent = this.nextContent()
      if (indent < col) return obj
      if (indent > col) bail()
      key = this.key(this.starts[this.li]! + col, this.ends[this.li]!) ?? bail()
    }
  }

  /** The value after a block mapping key's `:` at `p - 1`; leaves the current line after it. */
  private value (p: number, col: number): unknown {
    const e = this.ends[this.li]!
    p = this.skipSpaces(p, e)
    if (p === e || this.text.charCodeAt(p) === HASH) {
      this.li++
      const indent = this.nextContent()
      if (indent > col) return this.block(indent)
      // A sequence may sit at its key's own indentation.
      if (indent === col && this.isSeqItem(this.starts[this.li]! + col, this.ends[this.li]!)) return this.seq(col)
      return null
    }
    const c = this.text.charCodeAt(p)
    if (c === PIPE || c === GT) return this.blockScalar(p, e, col)
    const { value, end } = this.inline(p, e, false)
    this.endOfLine(end, e)
    this.li++
    return value
  }

  /** Nothing but spaces and a comment from `p` to the end of the line. */
  private endOfLine (p: number, e: number): void {
    const q = this.skipSpaces(p, e)
    if (q < e && (q === p || this.text.charCodeAt(q) !== HASH)) bail()
  }

  /** A block sequence whose `-` are at column `col`; the current line holds the first. */
  private seq (col: number): unknown[] {
    const arr: unknown[] = []
    for (;;) {
      const s = this.starts[this.li]!
      const e = this.ends[this.li]!
      const p = this.skipSpaces(s + col + 1, e)
      if (p === e || this.text.charCodeAt(p) === HASH) {
        this.li++
        const indent = this.nextContent()
        arr.push(indent > col ? this.block(indent) : null)
      } else if (this.isSeqItem(p, e)) {
        bail() // `- - a`
      } else {
        const key = this.key(p, e)
        const c = this.text.charCodeAt(p)
        if (key !== undefined) {
          arr.push(this.map(p - s, p, key))
        } else if (c === PIPE || c === GT) {
          arr.push(this.blockScalar(p, e, col))
        } else {
          const { value, end } = this.inline(p, e, false)
          this.endOfLine(end, e)
          this.li++
          arr.push(value)
        }
      }
      const indent = this.nextContent()
      if (indent < col) return arr
      if (indent > col) bail()
      // Same column but no `-`: the next key of a mapping that holds this sequence at its own indentation.
      if (!this.isSeqItem(this.starts[this.li]! + col, this.ends[this.li]!)) return arr
    }
  }

  /**
   * A literal (`|`) or folded (`>`) block scalar whose header is at `p`, inside a node indented
   * by `parent`; leaves the current line after it. Only the plain forms: clip or strip (`-`)
   * chomping, the indentation taken from the first line (which must not be empty), no
   * more-indented line in a folded scalar, no blank line with more spaces than the indentation.
   */
  private blockScalar (p: number, e: number, parent: number): string {
    const t = this.text
    const folded = t.charCodeAt(p) === GT
    let q = p + 1
    const strip = t.charCodeAt(q) === DASH
    if (strip) q++
    if (q < e) {
      if (t.charCodeAt(q) !== SPACE) bail()
      const r = this.skipSpaces(q, e)
      if (r < e && t.charCodeAt(r) !== HASH) bail()
    }
    let li = this.li + 1
    let indent = -1
    let value = ''
    let blanks = 0
    for (; li < this.starts.length; li++) {
      const s = this.starts[li]!
      const end = this.ends[li]!
      const i = this.skipSpaces(s, end)
      if (i === end) {
        if (indent < 0 || i - s > indent) bail() // a leading blank line, or a more-indented one
        blanks++
        continue
      }
      if (indent < 0) {
        indent = i - s
        if (indent <= parent) bail()
        value = t.slice(s + indent, end)
        continue
      }
      if (i - s < indent) break
      if (folded && i - s > indent) bail()
      const content = t.slice(s + indent, end)
      value += (folded ? (blanks === 0 ? ' ' : '\n'.repeat(blanks)) : '\n'.repeat(blanks + 1)) + content
      blanks = 0
    }
    if (indent < 0) bail()
    this.li = li
    return strip ? value : value + '\n'
  }

  /** An implicit key at `p` followed by `: ` (or `:` at the end of the line), or undefined when the line holds no key there. */
  private key (p: number, e: number): { key: string, after: number } | undefined {
    const t = this.text
    const c = t.charCodeAt(p)
    if (c === DQUOTE || c === SQUOTE) {
      const { value, end } = c === DQUOTE ? this.doubleQuoted(p, e) : this.singleQuoted(p, e)
      if (t.charCodeAt(end) !== COLON || !(end + 1 === e || t.charCodeAt(end + 1) === SPACE)) return undefined
      if (end - p > 1000) bail()
      return { key: value as string, after: end + 1 }
    }
    if (!this.plainFirst(p, e, false)) return undefined
    for (let i = p + 1; i < e; i++) {
      const ch = t.charCodeAt(i)
      if (ch === COLON) {
        if (i + 1 === e || t.charCodeAt(i + 1) === SPACE) {
          if (t.charCodeAt(i - 1) === SPACE || i - p > 1000) bail()
          const key = resolvePlain(t.slice(p, i))
          if (typeof key !== 'string' || key === '<<') bail() // `<<` is a merge key under some schemas
          return { key: key as string, after: i + 1 }
        }
      } else if ((ch === HASH && t.charCodeAt(i - 1) === SPACE) || ch === DQUOTE || ch === SQUOTE || isFlowIndicator(ch)) {
        return undefined
      }
    }
    return undefined
  }

  /** Whether a plain scalar may start at `p`. */
  private plainFirst (p: number, e: number, flow: boolean): boolean {
    const c = this.text.charCodeAt(p)
    if (!INDICATOR.has(c)) return true
    if (c !== DASH || p + 1 >= e) return false
    const next = this.text.charCodeAt(p + 1)
    return next !== SPACE && !(flow && isFlowIndicator(next))
  }

  /** A scalar or flow collection starting at `p`, within the line ending at `e`. */
  private inline (p: number, e: number, flow: boolean): Scanned {
    const c = this.text.charCodeAt(p)
    if (c === LBRACKET) return this.flowSeq(p, e)
    if (c === LBRACE) return this.flowMap(p, e)
    if (c === DQUOTE) return this.doubleQuoted(p, e)
    if (c === SQUOTE) return this.singleQuoted(p, e)
    if (!this.plainFirst(p, e, flow)) bail()
    const end = flow ? this.plainFlowEnd(p, e) : this.plainBlockEnd(p, e)
    if (end === p) bail()
    return { value: resolvePlain(this.text.slice(p, end)), end }
  }

  /** Where a plain scalar in block context ends (trailing spaces trimmed). */
  private plainBlockEnd (p: number, e: number): number {
    const t = this.text
    let i = p
    for (; i < e; i++) {
      const ch = t.charCodeAt(i)
      if (ch === COLON && (i + 1 === e || t.charCodeAt(i + 1) === SPACE)) bail() // a mapping where a scalar belongs
      if (ch === HASH && t.charCodeAt(i - 1) === SPACE) break
    }
    while (i > p && t.charCodeAt(i - 1) === SPACE) i--
    return i
  }

  /** Where a plain scalar in flow context ends: before `,`, `]`, `}` or `: ` (trailing spaces trimmed). */
  private plainFlowEnd (p: number, e: number): number {
    const t = this.text
    let i = p
    for (; i < e; i++) {
      const ch = t.charCodeAt(i)
      if (ch === COMMA || ch === RBRACKET || ch === RBRACE) break
      if (ch === LBRACKET || ch === LBRACE) bail()
      if (ch === COLON) {
        const next = i + 1 < e ? t.charCodeAt(i + 1) : SPACE
        if (next === SPACE || isFlowIndicator(next)) break
      }
      if (ch === HASH && t.charCodeAt(i - 1) === SPACE) bail() // a comment inside a flow collection
    }
    if (i === e) bail() // the collection goes on past the line
    while (i > p && t.charCodeAt(i - 1) === SPACE) i--
    return i
  }

  private flowSeq (p: number, e: number): Scanned {
    const t = this.text
    const arr: unknown[] = []
    let i = this.skipSpaces(p + 1, e)
    if (t.charCodeAt(i) === RBRACKET) return { value: arr, end: i + 1 }
    for (;;) {
      if (i >= e) bail()
      const item = this.inline(i, e, true)
      arr.push(item.value)
      i = this.skipSpaces(item.end, e)
      const ch = t.charCodeAt(i)
      if (ch === RBRACKET) return { value: arr, end: i + 1 }
      if (ch !== COMMA) bail()
      i = this.skipSpaces(i + 1, e)
      if (t.charCodeAt(i) === RBRACKET) bail() // a trailing comma: valid, but left to `yaml`
    }
  }

  private flowMap (p: number, e: number): Scanned {
    const t = this.text
    const obj: Record<string, unknown> = {}
    this.mapStart.set(obj, p)
    let i = this.skipSpaces(p + 1, e)
    if (t.charCodeAt(i) === RBRACE) return { value: obj, end: i + 1 }
    for (;;) {
      if (i >= e) bail()
      const c = t.charCodeAt(i)
      let key: unknown
      let end: number
      if (c === DQUOTE || c === SQUOTE) {
        ({ value: key, end } = c === DQUOTE ? this.doubleQuoted(i, e) : this.singleQuoted(i, e))
      } else {
        if (!this.plainFirst(i, e, true)) bail()
        end = this.plainFlowEnd(i, e)
        if (end === i) bail()
        key = resolvePlain(t.slice(i, end))
        if (key === '<<') bail()
      }
      if (typeof key !== 'string' || t.charCodeAt(end) !== COLON || t.charCodeAt(end + 1) !== SPACE) return bail()
      if (Object.hasOwn(obj, key)) bail()
      const value = this.inline(this.skipSpaces(end + 1, e), e, true)
      set(obj, key, value.value)
      i = this.skipSpaces(value.end, e)
      const ch = t.charCodeAt(i)
      if (ch === RBRACE) return { value: obj, end: i + 1 }
      if (ch !== COMMA) bail()
      i = this.skipSpaces(i + 1, e)
      if (t.charCodeAt(i) === RBRACE) bail() // a trailing comma
    }
  }

  private doubleQuoted (p: number, e: number): Scanned {
    const t = this.text
    let out = ''
    let from = p + 1
    for (let i = p + 1; i < e; i++) {
      const ch = t.charCodeAt(i)
      if (ch === DQUOTE) return { value: out + t.slice(from, i), end: i + 1 }
      if (ch !== BACKSLASH) continue
      out += t.slice(from, i)
      const next = t[i + 1]
      if (next === undefined || i + 1 >= e) bail()
      const simple = ESCAPES[next!]
      if (simple !== undefined) {
        out += simple
        i += 1
      } else if (next === 'x' || next === 'u' || next === 'U') {
        const length = next === 'x' ? 2 : next === 'u' ? 4 : 8
        const hex = t.slice(i + 2, i + 2 + length)
        if (i + 2 + length > e || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== length) bail()
        const code = parseInt(hex, 16)
        if (code > 0x10ffff) bail()
        out += String.fromCodePoint(code)
        i += 1 + length
      } else {
        bail()
      }
      from = i + 1
    }
    return bail() // not closed on this line
  }

  private singleQuoted (p: number, e: number): Scanned {
    const t = this.text
    let out = ''
    let from = p + 1
    for (let i = p + 1; i < e; i++) {
      if (t.charCodeAt(i) !== SQUOTE) continue
      if (t.charCodeAt(i + 1) === SQUOTE && i + 1 < e) {
        out += t.slice(from, i + 1)
        from = i + 2
        i++
        continue
      }
      return { value: out + t.slice(from, i), end: i + 1 }
    }
    return bail()
  }
}

/** As `yaml` adds a pair to a JS object (an inherited name such as `__proto__` becomes an own property). */
function set (obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key in obj) Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true })
  else obj[key] = value
}

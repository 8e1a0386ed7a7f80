/**
 * A static upper bound on what a CEL condition can cost, whatever the caller sends, in the
 * spirit of cel-go's cost estimator (checker/cost.go): every value read from the request is as
 * large as the request may be, and the estimate multiplies a comprehension's body by the size
 * of its range. A condition whose bound exceeds the budget is refused when the policy loads, so
 * no request can make it slow: `context.a.exists(x, x in context.b)` is quadratic in the body
 * size (about a second on a 60 KB request) and is refused; `context.a.exists(x, x in ['p', 'q'])`
 * is linear and loads.
 *
 * cel-js has structural limits (AST size, depth) but no run-time cost tracking, so the bound is
 * static; it is sound for the interpreter's operations as modelled here:
 * - a value read from request data (`context`, `claims`, `subject`, …) has size ≤ the body limit,
 *   counting characters of a string or elements of a list or map alike;
 * - inside a comprehension, the element's size S is tracked separately: a body that costs a + b·S
 *   per element costs C·a + b·T over the range, where C (elements) and T (their total size) are
 *   both ≤ the range's size; so `e.matches(…)` over a list is linear, not quadratic;
 * - `in` on a list scans it (a map is a lookup); a comparison costs its shorter operand; string
 *   functions, `+` and conversions cost the size of their operands; `size()` and everything else one step;
 * - `matches()` costs input length × the pattern's RE2 program size × REGEX_STEP: re2js's
 *   DFA is far cheaper, but its NFA fallback (when the DFA runs out of states) was measured at
 *   up to ~7 ns per character and instruction, about two steps.
 * Comprehensions inside comprehensions are refused before this runs (see cel.ts).
 */
import type { ASTNode } from '@marcbachmann/cel-js'

/** The largest request body (app.ts BODY_LIMIT): no caller value is larger. */
export const DATA_SIZE = 64 * 1024
/**
 * At most this many steps per condition: 64 linear passes over the largest body. A step costs
 * the interpreter about 1.5-5 ns once warm (measured with cel-js 8 on comprehensions over
 * 60 KB lists), so a condition at the budget takes ~5-20 ms, and a request that hits it is
 * timed in test/http/condition-cost.test.ts.
 */
export const COST_BUDGET = 64 * DATA_SIZE

/** Steps per character and RE2 instruction (see above). */
export const REGEX_STEP = 2

/** k + v·S: a bound in terms of S, the size of the current comprehension element. */
interface Linear { k: number, v: number }

const ONE: Linear = { k: 1, v: 0 }
const add = (...xs: Linear[]): Linear => xs.reduce((a, b) => ({ k: a.k + b.k, v: a.v + b.v }), { k: 0, v: 0 })
const DATA: Linear = { k: DATA_SIZE, v: 0 }
const ELEMENT: Linear = { k: 0, v: 1 }

/** The smaller bound; for `x == context.b` inside a comprehension, the element's (it sums to the range's size). */
const smaller = (a: Linear, b: Linear): Linear => (a.k < b.k || (a.k === b.k && a.v <= b.v) ? a : b)

const SCALAR = /^(int|uint|double|bool|null_type|timestamp|duration|type)$/
const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter'])

interface Estimate { cost: Linear, size: Linear }

export interface CostReport {
  /** Worst-case steps over any caller data within the request limits. */
  cost: number
  /** The comprehension or operation that contributes most, to point the author at. */
  hottest: ASTNode | undefined
}

/** `programSize(pattern)`: the RE2 program size of a literal pattern (cel.ts compiles it). */
export function estimateCost (ast: ASTNode, programSize: (pattern: string) => number): CostReport {
  let hottest: { node: ASTNode, cost: number } | undefined
  const note = (node: ASTNode, cost: Linear): void => {
    const worst = cost.k + cost.v * DATA_SIZE
    if (hottest === undefined || worst > hottest.cost) hottest = { node, cost: worst }
  }

  const visit = (node: ASTNode, element: string | undefined): Estimate => {
    const args = node.args as unknown
    const typeName = (node as { checkedType?: { name?: string } }).checkedType?.name
    const scalarResult = typeName !== undefined && SCALAR.test(typeName)
    const sized = (size: Linear): Linear => (scalarResult ? ONE : size)

    switch (node.op) {
      case 'value':
        return { cost: ONE, size: { k: typeof args === 'string' ? args.length : 1, v: 0 } }
      case 'id':
        return { cost: ONE, size: args === element ? ELEMENT : sized(DATA) }
      case '.':
      case '.?': {
        const target = visit((args as [ASTNode, string])[0], element)
        // A part is no larger than the whole.
        return { cost: add(target.cost, ONE), size: sized(target.size) }
      }
      case '[]':
      case '[?]': {
        const [t, k] = args as [ASTNode, ASTNode]
        const target = visit(t, element)
        const key = visit(k, element)
        return { cost: add(target.cost, key.cost, key.size), size: sized(target.size) }
      }
      case 'list':
      case 'map': {
        const parts = children(node).map(c => visit(c, element))
        const size = add({ k: parts.length, v: 0 }, ...parts.map(p => p.size))
        return { cost: add(ONE, ...parts.map(p => p.cost)), size }
      }
      case 'in': {
        const [l, r] = args as [ASTNode, ASTNode]
        const left = visit(l, element)
        const right = visit(r, element)
        const rightType = (r as { checkedType?: { name?: string } }).checkedType?.name ?? ''
        const scan = rightType.startsWith('map<') ? left.size : right.size
        const cost = add(left.cost, right.cost, scan, ONE)
        note(node, cost)
        return { cost, size: ONE }
      }
      case 'rcall':
      case 'call': {
        const name = (args as [string])[0]
        if (node.op === 'rcall' && MACROS.has(name)) return comprehension(node, element)
        if (name === 'has' || name === 'size') return { cost: add(ONE, ...children(node).map(c => visit(c, element).cost)), size: ONE }
        if (node.op === 'rcall' && name === 'matches') {
          const [, receiver, [pattern]] = args as [string, ASTNode, ASTNode[]]
          const input = visit(receiver, element)
          const perChar = typeof pattern?.args === 'string' ? programSize(pattern.args) * REGEX_STEP : DATA_SIZE
          const cost = add(ONE, input.cost, { k: input.size.k * perChar, v: input.size.v * perChar })
          note(node, cost)
          return { cost, size: ONE }
        }
        const parts = children(node).map(c => visit(c, element))
        const cost = add(ONE, ...parts.map(p => p.cost), ...parts.map(p => p.size))
        note(node, cost)
        return { cost, size: sized(add(...parts.map(p => p.size))) }
      }
      case '==':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=': {
        // A comparison stops at the end of the shorter operand (strings and lists alike).
        const [l, r] = children(node).map(c => visit(c, element)) as [Estimate, Estimate]
        return { cost: add(ONE, l.cost, r.cost, smaller(l.size, r.size)), size: ONE }
      }
      default: {
        // Operators: + concatenates both operands, the rest are O(1) on scalars.
        const parts = children(node).map(c => visit(c, element))
        const cost = add(ONE, ...parts.map(p => p.cost), ...parts.map(p => p.size))
        return { cost, size: sized(add(...parts.map(p => p.size))) }
      }
    }
  }

  const comprehension = (node: ASTNode, outer: string | undefined): Estimate => {
    const [name, receiver, [iterator, ...rest]] = node.args as [string, ASTNode, ASTNode[]]
    const range = visit(receiver, outer)
    const inner = String(iterator?.args)
    // The range is outside any comprehension (nesting is refused), so its bound is a number.
    const count = range.size.k + range.size.v * DATA_SIZE
    const body = add(ONE, ...rest.map(r => visit(r, inner).cost))
    const bodySize = add(...rest.map(r => visit(r, inner).size))
    const cost: Linear = { k: range.cost.k + range.cost.v * DATA_SIZE + count * body.k + count * body.v, v: 0 }
    note(node, cost)
    const size = name === 'map' ? { k: count + count * bodySize.k + count * bodySize.v, v: 0 } : name === 'filter' ? range.size : ONE
    return { cost, size }
  }

  const total = visit(ast, undefined)
  return { cost: total.cost.k + total.cost.v * DATA_SIZE, hottest: hottest?.node }
}

/** The sub-expressions of a node (its arguments that are themselves nodes). */
export function children (node: ASTNode): ASTNode[] {
  const out: ASTNode[] = []
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit)
    else if (v !== null && typeof v === 'object' && 'op' in v) out.push(v as ASTNode)
  }
  visit(node.args)
  return out
}

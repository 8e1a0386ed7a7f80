/**
 * CEL conditions, compiled once with @marcbachmann/cel-js (see docs/architecture.md, "Why this CEL library").
 * Compilation type-checks variable and field names, bounds the expression's size, forbids
 * iteration inside iteration, bounds its cost over any caller data (./cel-cost.ts), compiles
 * `matches()` patterns with RE2, and records what the expression reads so the service gathers
 * only the signals that some policy needs.
 */
import { Environment, EvaluationError, type ASTNode } from '@marcbachmann/cel-js'
import { LRUCache } from 'lru-cache'
import { RE2JS } from 're2js'
import type { ConditionProgram } from '../engine/model.js'
import { children, COST_BUDGET, DATA_SIZE, estimateCost } from './cel-cost.js'

const env = new Environment({
  limits: { maxAstNodes: 400, maxDepth: 24, maxListElements: 256, maxMapEntries: 64, maxCallArguments: 8 }
})
  .registerVariable('action', 'string')
  .registerVariable('tenant', 'dyn')
  .registerVariable('application', 'dyn')
  .registerVariable('ip', 'dyn')
  .registerVariable('resource', 'dyn')
  .registerVariable('subject', 'map<string, dyn>')
  .registerVariable('claims', 'map<string, dyn>')
  .registerVariable('context', 'map<string, dyn>')
  .registerVariable({ name: 'geo', schema: { country: 'string', city: 'string', latitude: 'double', longitude: 'double', accuracyKm: 'double' } })
  .registerVariable({ name: 'session', schema: { aal: 'double', authAge: 'double' } })
  .registerVariable({
    name: 'signals',
    schema: {
      newDevice: 'bool',
      newCountry: 'bool',
      impossibleTravel: 'bool',
      hasHistory: 'bool',
      locationKnown: 'bool',
      travel: { distanceKm: 'double', elapsedSeconds: 'double', speedKmh: 'double' },
      ipLists: 'list<string>',
      riskScore: 'double'
    }
  })

const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter'])

export class ConditionError extends Error {
  constructor (message: string, readonly offset: number | undefined) { super(message) }
}

export function compileCondition (source: string): ConditionProgram {
  let fn: ReturnType<typeof env.parse>
  try {
    fn = env.parse(source)
  } catch (err) {
    throw new ConditionError(firstLine(err), rangeStart(err))
  }
  const checked = fn.check()
  if (!checked.valid) throw new ConditionError(firstLine(checked.error), rangeStart(checked.error))
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw new ConditionError(`must be a boolean expression, but its type is ${checked.type}`, 0)
  }
  const reads = new Set<string>()
  walk(fn.ast, new Set(), reads, 0)
  const { cost, hottest } = estimateCost(fn.ast, pattern => compileRe2(pattern, undefined).programSize())
  if (cost > COST_BUDGET) {
    throw new ConditionError(`could cost up to ${cost.toExponential(1)} steps on a ${DATA_SIZE / 1024} KiB request (the limit is ${COST_BUDGET.toExponential(1)}): ${costAdvice(hottest)}`, hottest?.start)
  }
  installLinearMatches(fn.ast)
  return {
    source,
    reads,
    unguardedContext: unguardedContextReads(fn.ast),
    evaluate: vars => runCompiled(fn, vars)
  }
}

/** What to change, by the kind of operation that costs most. */
function costAdvice (hottest: ASTNode | undefined): string {
  const args = hottest?.args as unknown
  const name = Array.isArray(args) && typeof args[0] === 'string' ? args[0] : undefined
  if (hottest?.op === 'rcall' && name !== undefined && MACROS.has(name)) {
    return `${name}() repeats work over request data for each element of request data, which grows with the square of the request; `
      + 'test elements against a literal list or a map, or move the check to the caller'
  }
  if (name === 'matches') {
    return 'matches() on request data costs its length times the size of the pattern\'s program; use a shorter pattern '
      + '(fewer counted repetitions such as {2,30}), or match fewer strings'
  }
  return 'work grows with the size of the request data it reads; compare with literals or move the check to the caller'
}

/** Runs a compiled expression; run-time errors and non-boolean results are reported, not thrown. */
function runCompiled (fn: (vars: Record<string, unknown>) => unknown, vars: Record<string, unknown>): { value: boolean } | { error: string } {
  try {
    const value = fn(vars)
    return typeof value === 'boolean' ? { value } : { error: `the result is not a boolean (${typeof value})` }
  } catch (err) {
    if (err instanceof EvaluationError) return { error: firstLine(err) }
    return { error: `evaluation failed: ${(err as Error).message}` }
  }
}

const firstLine = (err: unknown): string => String((err as Error)?.message ?? err).split('\n')[0]!.trim()

const rangeStart = (err: unknown): number | undefined => {
  const range = (err as { range?: { start?: number } } | undefined)?.range
  return typeof range?.start === 'number' ? range.start : undefined
}

function walk (node: ASTNode, bound: Set<string>, reads: Set<string>, comprehensionDepth: number): void {
  const path = selectPath(node)
  if (path !== null) {
    // A computed key (`context[geo.country]`) reads what its expression reads, too.
    const key = node.op === '[]' ? (node.args as [ASTNode, ASTNode])[1] : undefined
    if (key !== undefined && !(key.op === 'value' && typeof key.args === 'string')) walk(key, bound, reads, comprehensionDepth)
    const root = path.split('.')[0]!
    if (!bound.has(root)) {
      reads.add(root)
      if (root === 'signals' || root === 'session' || root === 'geo') reads.add(path.split('.').slice(0, 2).join('.'))
    }
    return
  }
  const args = node.args as unknown
  if (node.op === 'rcall' && Array.isArray(args) && MACROS.has(args[0] as string)) {
    if (comprehensionDepth >= 1) {
      throw new ConditionError(`${String(args[0])}() inside another comprehension is not allowed: its cost would grow with the square of the input`, node.start)
    }
    const [, receiver, [iterator, ...rest]] = args as [string, ASTNode, ASTNode[]]
    walk(receiver, bound, reads, comprehensionDepth)
    const inner = new Set(bound).add(String(iterator?.args))
    for (const a of rest) walk(a, inner, reads, comprehensionDepth + 1)
    return
  }
  if ((node.op === 'rcall' || node.op === 'call') && Array.isArray(args) && args[0] === 'matches') {
    const pattern = (node.op === 'rcall' ? (args[2] as ASTNode[])[0] : (args[1] as ASTNode[])[1])
    if (!pattern || pattern.op !== 'value' || typeof pattern.args !== 'string') {
      throw new ConditionError('matches() takes a literal pattern, so it can be checked when the policy loads', node.start)
    }
    compileRe2(pattern.args, pattern.start)
  }
  for (const child of children(node)) walk(child, bound, reads, comprehensionDepth)
}

/*
 * matches() with RE2 semantics, in time linear in the input (re2js: an automaton, no
 * backtracking), where cel-js would run a backtracking JavaScript RegExp: `^(a|aa)+$` on 34
 * characters took seconds there. cel-js cannot replace a standard function (it refuses an
 * overlapping overload), so after type checking each `matches` call node gets our handler in
 * place of the one the checker bound; installLinearMatches fails loudly if cel-js ever stops
 * binding handlers that way, and test/unit/cel-regex-dos.test.ts would catch a silent change.
 *
 * `test()` runs re2js's DFA where it can (an NFA when the DFA's state budget runs out); its
 * worst case grows with input length × program size, which the cost bound charges
 * (./cel-cost.ts), and a program over MAX_PROGRAM_SIZE instructions is refused outright.
 *
 * Patterns stay literal although RE2 would be safe with caller-supplied ones: a literal is
 * compiled once, refused with its file and line when it is not valid RE2 (a backreference, a
 * lookaround), and costs nothing per request; a caller-chosen pattern would be compiled on
 * every evaluation and let caller data pick the automaton's size.
 */
const re2Cache = new LRUCache<string, RE2JS>({ max: 10_000 })
/** `(a?){500}a{500}` is 2,502 instructions and takes ~0.5 s on 60 KB; real patterns are < 100. */
const MAX_PROGRAM_SIZE = 1000

function compileRe2 (pattern: string, offset: number | undefined): RE2JS {
  let re = re2Cache.get(pattern)
  if (re !== undefined) return re
  try {
    re = RE2JS.compile(pattern)
  } catch (err) {
    throw new ConditionError(`the pattern ${JSON.stringify(pattern)} is not a valid RE2 regular expression: ${firstLine(err)}`, offset)
  }
  if (re.programSize() > MAX_PROGRAM_SIZE) {
    throw new ConditionError(`the pattern ${JSON.stringify(pattern)} compiles to ${re.programSize()} instructions (at most ${MAX_PROGRAM_SIZE}): shorten its counted repetitions`, offset)
  }
  re2Cache.set(pattern, re)
  return re
}

interface BoundCall { handle?: unknown }

function installLinearMatches (node: ASTNode): void {
  const args = node.args as unknown
  if (node.op === 'rcall' && Array.isArray(args) && args[0] === 'matches') {
    const pattern = (args[2] as ASTNode[])[0]!
    const re = compileRe2(pattern.args as string, pattern.start)
    const call = node as unknown as BoundCall
    if (typeof call.handle !== 'function') throw new Error('cel-js no longer binds a handler to checked calls: matches() cannot be made linear-time')
    call.handle = (values: unknown[]) => {
      const input = values[0]
      if (typeof input !== 'string') throw new EvaluationError(`matches() needs a string, not ${input === null ? 'null' : typeof input}`)
      return re.test(input)
    }
  }
  for (const child of children(node)) installLinearMatches(child)
}

function selectPath (node: ASTNode): string | null {
  if (node.op === 'id') return node.args as string
  if (node.op === '.' || node.op === '.?') {
    const [target, field] = node.args as [ASTNode, string]
    const p = selectPath(target)
    return p === null ? null : `${p}.${field}`
  }
  if (node.op === '[]') {
    const [target, key] = node.args as [ASTNode, ASTNode]
    const p = selectPath(target)
    if (p !== null && key.op === 'value' && typeof key.args === 'string') return `${p}.${key.args}`
    if (p !== null) { /* dynamic index: the whole object is read */ return p }
  }
  return null
}

/**
 * The `context.*` paths an expression reads that no guard in the same expression covers.
 * A guard is `has(context.a.b)` or `'b' in context.a`; it covers its own path and every prefix
 * of it (the author thought about that field). Optional selection (`.?`) needs no guard.
 */
function unguardedContextReads (ast: ASTNode): string[] {
  const reads = new Set<string>()
  const guards = new Set<string>()
  const visit = (node: ASTNode, bound: ReadonlySet<string>): void => {
    const args = node.args as unknown
    if (node.op === 'call' && Array.isArray(args) && args[0] === 'has') {
      const [target] = args[1] as ASTNode[]
      const p = target ? contextPath(target, bound) : null
      if (p !== null) { guards.add(p.path); return }
    }
    if (node.op === 'in' && Array.isArray(args)) {
      const [key, container] = args as [ASTNode, ASTNode]
      const p = contextPath(container, bound)
      if (key.op === 'value' && typeof key.args === 'string' && p !== null) { guards.add(`${p.path}.${key.args}`); return }
    }
    const p = contextPath(node, bound)
    if (p !== null) {
      if (!p.optional && p.path !== 'context') reads.add(p.path)
      for (const k of p.dynamicKeys) visit(k, bound)
      return
    }
    if (node.op === 'rcall' && Array.isArray(args) && MACROS.has(args[0] as string)) {
      const [, receiver, [iterator, ...rest]] = args as [string, ASTNode, ASTNode[]]
      visit(receiver, bound)
      const inner = new Set(bound).add(String(iterator?.args))
      for (const a of rest) visit(a, inner)
      return
    }
    for (const child of children(node)) visit(child, bound)
  }
  visit(ast, new Set())
  const covered = (path: string): boolean => [...guards].some(g => g === path || g.startsWith(path + '.'))
  return [...reads].filter(r => !covered(r)).sort()
}

/** `context`, `context.a.b`, `context['a']`: the static part of a selection on `context`. */
function contextPath (node: ASTNode, bound: ReadonlySet<string>): { path: string, optional: boolean, dynamicKeys: ASTNode[] } | null {
  if (node.op === 'id') return node.args === 'context' && !bound.has('context') ? { path: 'context', optional: false, dynamicKeys: [] } : null
  if (node.op === '.' || node.op === '.?') {
    const [target, field] = node.args as [ASTNode, string]
    const p = contextPath(target, bound)
    if (p === null) return null
    if (p.dynamicKeys.length > 0) return p
    return { path: `${p.path}.${field}`, optional: p.optional || node.op === '.?', dynamicKeys: [] }
  }
  if (node.op === '[]') {
    const [target, key] = node.args as [ASTNode, ASTNode]
    const p = contextPath(target, bound)
    if (p === null) return null
    if (p.dynamicKeys.length > 0) return { ...p, dynamicKeys: [...p.dynamicKeys, key] }
    if (key.op === 'value' && typeof key.args === 'string') return { ...p, path: `${p.path}.${key.args}` }
    // A computed key: the field read is not known statically; its own reads still count.
    return { ...p, dynamicKeys: [key] }
  }
  return null
}

/**
 * Conditions checked before they ship: each CEL condition of a compiled set is evaluated
 * against generated requests (every standard claim with its OIDC type; every `context` field
 * the condition names as a number, a string, a boolean, null, lists and maps). A condition that
 * errors for every one of them can never decide anything but "fire because of an error"
 * (e.g. `claims.amr.contains("hwk")`: a list has no `contains`, or `claims.auth_time > "1"`),
 * so it is refused with its file:line:col. Runs in the loading worker.
 */
import type { PolicyProblem } from '../errors.js'
import type { CompiledPolicySet } from '../engine/policy-set.js'
import type { ConditionProgram } from '../engine/model.js'
import { parseSource, working, type PolicySource } from './source.js'

const CLAIMS = {
  sub: 'user-1', iss: 'https://issuer.example', acr: 'urn:example:aal2', amr: ['pwd', 'otp'],
  auth_time: 1_700_000_000, iat: 1_700_000_000, exp: 1_700_003_600, su: false, cnf: { jkt: 'thumbprint' }
}

/**
 * Values of every CEL type a `context` field may hold, lists and maps of each kind and empty
 * ones included: a condition is refused only when no input at all makes it work.
 */
const SAMPLES: unknown[] = [
  1000, 12.5, 'text', true, null,
  [], ['a', 'b'], [1, 2], [1.5], [true], [{ key: 'value' }],
  {}, { key: 'value' }, { key: 1 }
]

/** `context.a.b`, `context['a']`: the static context paths named in the source. */
function contextPaths (source: string): string[][] {
  const paths: string[][] = []
  const re = /\bcontext((?:\s*(?:\.\??\s*[A-Za-z_]\w*|\[\s*(?:"[^"]*"|'[^']*')\s*\]))+)/g
  for (let m = re.exec(source); m !== null; m = re.exec(source)) {
    const parts = [...m[1]!.matchAll(/\.\??\s*([A-Za-z_]\w*)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\]/g)].map(p => p[1] ?? p[2] ?? p[3]!)
    // `context.n.filter(...)`: the last name is a method called on the field, not a field.
    if (/^\s*\(/.test(source.slice(m.index + m[0].length))) parts.pop()
    if (parts.length > 0) paths.push(parts)
  }
  return paths
}

function contextWith (paths: string[][], leaf: unknown): Record<string, unknown> {
  const context: Record<string, unknown> = {}
  for (const path of paths) {
    // Each prefix of the path exists as a map, its end holds the sample.
    for (let depth = 1; depth <= path.length; depth++) {
      let node = context
      for (const key of path.slice(0, depth - 1)) {
        if (typeof node[key] !== 'object' || node[key] === null || Array.isArray(node[key])) node[key] = {}
        node = node[key] as Record<string, unknown>
      }
      const key = path[depth - 1]!
      if (depth === path.length) { if (!(key in node)) node[key] = leaf } else if (typeof node[key] !== 'object' || node[key] === null || Array.isArray(node[key])) node[key] = {}
    }
  }
  return context
}

function variables (context: Record<string, unknown>): Record<string, unknown> {
  return {
    action: 'payments.payout',
    tenant: 'acme',
    application: 'web',
    ip: '203.0.113.9',
    resource: 'account:1',
    subject: { id: 'user-1', enrolledFactors: ['otp'] },
    claims: CLAIMS,
    context,
    geo: { country: 'DE', city: 'Berlin', latitude: 52.5, longitude: 13.4, accuracyKm: 10 },
    session: { aal: 2, authAge: 60 },
    signals: {
      newDevice: false, newCountry: false, impossibleTravel: false, hasHistory: true,
      travel: { distanceKm: 10, elapsedSeconds: 3600, speedKmh: 10 }, ipLists: [], riskScore: 0
    }
  }
}

/** The first error when the condition errors for every generated request; undefined when any input works. */
export function alwaysFails (program: ConditionProgram): string | undefined {
  const paths = contextPaths(program.source)
  const samples = paths.length === 0 ? [undefined] : SAMPLES
  let first: string | undefined
  for (const sample of samples) {
    const result = program.evaluate(variables(contextWith(paths, sample)))
    if (!('error' in result)) return undefined
    // A field the generator could not name (a computed key): no verdict.
    if (/no such key|unknown variable/i.test(result.error)) return undefined
    first ??= result.error
  }
  return first
}

/** Problems (errors) for the conditions of `set` that fail for every input, located in their files. */
export function checkConditions (set: CompiledPolicySet, sources: readonly PolicySource[]): PolicyProblem[] {
  const problems: PolicyProblem[] = []
  const verdicts = new Map<string, string | undefined>()
  let file: string | undefined
  for (const policy of set.policies) {
    if (policy.file !== file) { file = policy.file; working(file) }
    policy.triggers.forEach((trigger, t) => {
      if (trigger.kind !== 'condition') return
      const source = trigger.program.source
      if (!verdicts.has(source)) verdicts.set(source, alwaysFails(trigger.program))
      const error = verdicts.get(source)
      if (error === undefined) return
      const at = locateCondition(policy.id, policy.file, t, sources) ?? { line: policy.line, col: 1, field: `${policy.id}.when[${t}].condition` }
      problems.push({ ...at, file: policy.file, code: 'bad_condition', message: `fails for every input, so the policy would always fire on an error: ${error}`, severity: 'error' })
    })
  }
  return problems
}

/** Where a condition sits: the file is parsed again, which happens only when a problem was found. */
function locateCondition (id: string, file: string, trigger: number, sources: readonly PolicySource[]): { line: number, col: number, field: string } | undefined {
  const source = sources.find(s => s.file === file)
  if (!source) return undefined
  const parsed = parseSource(source, [])
  const policies = (parsed?.data as { policies?: Array<{ id?: unknown }> } | undefined)?.policies
  const index = Array.isArray(policies) ? policies.findIndex(p => p?.id === id) : -1
  if (!parsed || index < 0) return undefined
  return { ...parsed.locate(['policies', index, 'when', trigger, 'condition']), field: `policies[${index}].when[${trigger}].condition` }
}

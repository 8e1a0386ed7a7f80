/**
 * Validates parsed policy files against the JSON Schema and turns ajv's errors into
 * problems an operator can act on: `file:line:col field: what is expected`.
 */
import { Ajv, type ErrorObject } from 'ajv'
import type { PolicyProblem, ProblemCode } from '../errors.js'
import { policyFileSchema } from './schema.js'
import type { ParsedFile, Path } from './source.js'

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true })
const validateFile = ajv.compile(policyFileSchema)

const TRIGGERS = Object.keys(policyFileSchema.properties.policies.items.properties.when.items.properties)

const toPath = (pointer: string): Path =>
  pointer === ''
    ? []
    : pointer.slice(1).split('/').map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        .map(s => (/^\d+$/.test(s) ? Number(s) : s))

export const fieldName = (path: Path): string =>
  path.reduce<string>((acc, seg) => typeof seg === 'number' ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`, '') || '(file)'

const last = (path: Path): string | number | undefined => path[path.length - 1]

function explain (error: ErrorObject, path: Path): { path: Path, code: ProblemCode, message: string, key?: boolean } {
  const tail = last(path)
  const parent = path[path.length - 2]
  switch (error.keyword) {
    case 'required':
      return { path: [...path, error.params.missingProperty as string], code: 'missing_field', message: 'is required' }
    case 'additionalProperties': {
      const extra = error.params.additionalProperty as string
      const allowed = Object.keys((error.parentSchema as { properties?: object }).properties ?? {})
      return { path: [...path, extra], key: true, code: 'unknown_field', message: `unknown field; expected one of: ${allowed.join(', ')}` }
    }
    case 'minProperties':
    case 'maxProperties':
      if (parent === 'when') return { path, code: 'bad_trigger', message: `a trigger has exactly one of: ${TRIGGERS.join(', ')}` }
      return { path, code: 'bad_value', message: `must not be empty (${error.message ?? ''})` }
    case 'enum':
      return { path, code: 'bad_value', message: `must be one of ${(error.params.allowedValues as unknown[]).map(v => JSON.stringify(v)).join(', ')}` }
    case 'pattern':
      if (parent === 'actions') return { path, code: 'bad_action', message: 'must be an action pattern: segments of letters, digits, ":", "/", "-" separated by ".", or "*" (one segment) / "**" (one or more)' }
      if (tail === 'id' || tail === 'overrides') return { path, code: 'bad_id', message: 'must be an id: letters, digits, ".", "_", ":", "-" (at most 128), starting with a letter or digit' }
      if (parent === 'lists') return { path, code: 'bad_value', message: 'must be a list name: the file name of lists/<name>.txt without .txt' }
      return { path, code: 'bad_value', message: `must match ${String(error.params.pattern)}` }
    case 'anyOf':
      if (tail === 'maxAge' || tail === 'clockSkew') return { path, code: 'bad_duration', message: 'must be a duration: seconds as a whole number, or a number with s, m, h or d (30s, 5m, 1h)' }
      return { path, code: 'bad_value', message: 'must be empty or an object of parameters' }
    case 'type':
      return { path, code: 'bad_type', message: `must be ${error.params.type === 'array' ? 'a list' : error.params.type === 'object' ? 'a mapping' : `a ${String(error.params.type)}`}` }
    case 'uniqueItems':
      return { path, code: 'bad_value', message: 'must not repeat an item' }
    case 'minItems':
      return { path, code: 'bad_value', message: 'must not be empty' }
    default:
      return { path, code: 'bad_value', message: error.message ?? error.keyword }
  }
}

export interface Validity {
  /** The file is usable at all (its top level and `assurance` are valid). */
  usable: boolean
  /** Indexes of policies with schema errors: skipped, while the others are still compiled and checked. */
  invalidPolicies: Set<number>
}

/**
 * Validates one file. Branch noise from `anyOf` is dropped when a deeper, more precise error
 * says what is wrong at the same place.
 */
export function validateParsed (parsed: ParsedFile, problems: PolicyProblem[]): Validity {
  const validity: Validity = { usable: true, invalidPolicies: new Set() }
  if (validateFile(parsed.data)) return validity
  const errors = validateFile.errors ?? []
  for (const e of errors) {
    const m = /^\/policies\/(\d+)(\/|$)/.exec(e.instancePath)
    if (m) validity.invalidPolicies.add(Number(m[1]))
    else validity.usable = false
  }
  const anyOfPaths = new Set(errors.filter(e => e.keyword === 'anyOf').map(e => e.instancePath))
  const hasDeeper = (p: string): boolean => errors.some(e => e.instancePath.startsWith(p + '/') && e.keyword !== 'anyOf')
  const seen = new Set<string>()
  for (const error of errors) {
    const inAnyOf = [...anyOfPaths].some(p => error.instancePath === p || error.instancePath.startsWith(p + '/'))
    if (inAnyOf) {
      if (error.keyword === 'anyOf' && hasDeeper(error.instancePath)) continue
      if (error.keyword !== 'anyOf' && error.instancePath === [...anyOfPaths].find(p => p === error.instancePath)) continue
    }
    const explained = explain(error, toPath(error.instancePath))
    const field = fieldName(explained.path)
    const key = `${field}|${explained.message}`
    if (seen.has(key)) continue
    seen.add(key)
    const { line, col } = parsed.locate(explained.path, explained.key)
    problems.push({ file: parsed.file, line, col, field, code: explained.code, message: explained.message, severity: 'error' })
  }
  return validity
}

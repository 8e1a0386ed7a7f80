// One catalogue each for the codes of refused requests and of policy problems: the docs list
// exactly those codes, and the checks give every problem one.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ErrorCodes, ProblemCodes } from '../../src/errors.js'
import { errorBodySchema } from '../../src/http/errors.js'
import { compilePolicies } from '../../src/policy/compile.js'

/** The rows of the Markdown table that follows `heading`: first cell (a `code`) -> the other cells. */
const tableAfter = (file: string, heading: string): Map<string, string[]> => {
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(heading)
  if (start < 0) throw new Error(`${file}: no heading ${heading}`)
  const rows = new Map<string, string[]>()
  let inTable = false
  for (const line of text.slice(start).split('\n').slice(1)) {
    if (line.startsWith('#')) break
    if (!line.startsWith('|')) { if (inTable) break; continue }
    inTable = true
    const cells = line.split('|').slice(1, -1).map(c => c.trim())
    const code = /^`([a-z_]+)`$/.exec(cells[0]!)?.[1]
    if (code !== undefined) rows.set(code, cells.slice(1))
  }
  return rows
}

t.test('docs/api.md lists every HTTP error code with its status, and no other', async t => {
  const rows = tableAfter('docs/api.md', '## Errors')
  t.same([...rows.keys()].sort(), Object.keys(ErrorCodes).sort())
  for (const [code, { status }] of Object.entries(ErrorCodes)) t.equal(rows.get(code)?.[0], String(status), code)
})

t.test('the Error schema takes its codes and their table from the catalogue', async t => {
  t.same(errorBodySchema.properties.error.enum, Object.keys(ErrorCodes))
  for (const [code, { status, summary }] of Object.entries(ErrorCodes)) {
    t.ok(errorBodySchema.description.includes(`| \`${code}\` | ${status} | ${summary} |`), code)
  }
})

t.test('docs/policies.md lists every policy problem code, and no other', async t => {
  const rows = tableAfter('docs/policies.md', '### Problem codes')
  t.same([...rows.keys()].sort(), Object.keys(ProblemCodes).sort())
})

t.test('problems carry their codes', async t => {
  const { set, problems } = compilePolicies({
    policies: [{
      file: 'p.yaml',
      text: [
        'policies:',
        '  - { id: a, actions: [x], colour: red }',
        '  - { id: b, actions: [x], require: { maxAge: soon } }',
        '  - { id: c, actions: [x] }',
        '  - { id: c, actions: [y] }',
        '  - { id: d, actions: [x], overrides: nope }',
        '  - { id: e, actions: [x], when: [{ ipList: { lists: [tor] } }] }',
        '  - { id: g, actions: ["a b"] }'
      ].join('\n') + '\n'
    }],
    lists: []
  })
  t.equal(set, undefined)
  const codeOf = (field: string): string | undefined => problems.find(p => p.field === field)?.code
  t.equal(codeOf('policies[0].colour'), 'unknown_field')
  t.equal(codeOf('policies[1].require.maxAge'), 'bad_duration')
  t.equal(codeOf('policies[3].id'), 'duplicate_id')
  t.equal(codeOf('policies[4].overrides'), 'bad_override')
  t.equal(codeOf('policies[5].when[0].ipList.lists'), 'unknown_list')
  t.equal(codeOf('policies[6].actions[0]'), 'bad_action')
  for (const p of problems) t.ok(p.code in ProblemCodes, `${p.field}: ${p.code}`)
})

t.test('warnings carry their codes too', async t => {
  const { set, problems } = compilePolicies({
    policies: [{ file: 'p.yaml', text: 'policies:\n  - { id: f, actions: [x], when: [{ ipList: { lists: [tor] } }] }\n' }],
    lists: [{ name: 'tor', file: 'lists/tor.txt', text: '# none yet\n' }]
  })
  t.not(set, undefined)
  t.match(problems, [{ severity: 'warning', field: 'policies[0].when[0].ipList.lists', code: 'never_fires' }])
})

// The docs read well on the repository's hosting page: every relative link in the Markdown
// files points at a file that exists, and every #anchor at a heading of that file. Nothing
// links outside the repository by a relative path.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import t from 'tap'

const ROOT = process.cwd()

const markdownFiles = (): string[] => [
  ...['README.md', 'CONTRIBUTING.md', 'SECURITY.md'].filter(f => existsSync(f)),
  ...readdirSync('docs').filter(f => f.endsWith('.md')).map(f => `docs/${f}`)
]

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string): string =>
  heading.trim().toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-')

const anchorsOf = (file: string): Set<string> => {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map(m => slug(m[1]!)))
}

t.test('slugs follow the hosting page', async t => {
  t.equal(slug('`POST /decide`'), 'post-decide')
  t.equal(slug('Health, readiness and metrics'), 'health-readiness-and-metrics')
  t.equal(slug('Before a policy change ships'), 'before-a-policy-change-ships')
})

for (const file of markdownFiles()) {
  t.test(`${file}: relative links resolve`, async t => {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map(m => m[1]!).filter(l => !/^[a-z]+:/.test(l))
    t.ok(links.length > 0 || file === 'SECURITY.md', 'has links')
    for (const link of links) {
      const [path, anchor] = link.split('#') as [string, string | undefined]
      const target = path === '' ? file : normalize(join(dirname(file), path))
      const rel = relative(ROOT, join(ROOT, target)).replace(/\/$/, '')
      t.notOk(rel.startsWith('..'), `${link} stays inside the repository`)
      t.ok(existsSync(target), `${link} exists`)
      if (anchor !== undefined && existsSync(target) && statSync(target).isFile()) {
        t.ok(anchorsOf(target).has(anchor), `${link}: the heading #${anchor} exists in ${target}`)
      }
    }
  })
}

t.test('nothing in the docs or the code points at the old contract file outside the repository', async t => {
  const sources = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
    .flatMap(e => e.isDirectory() ? sources(join(dir, e.name)) : [join(dir, e.name)])
  for (const file of [...markdownFiles(), ...sources('src'), ...sources('policies')]) {
    t.notMatch(readFileSync(file, 'utf8'), /\.\.\/shared|SPEC\.md|SPEC\s§/, file)
  }
})

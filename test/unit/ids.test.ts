import t from 'tap'
import { sha256, uuidv7 } from '../../src/ids.js'

const FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('a UUIDv7: version 7, RFC 9562 variant, the milliseconds in the first 48 bits', async t => {
  const now = Date.UTC(2026, 10, 22, 9, 0, 0, 123)
  const id = uuidv7(now)
  t.match(id, FORMAT)
  t.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), now)
})

t.test('ids sort by time and do not repeat (random bits span pool refills)', async t => {
  const seen = new Set<string>()
  const bad: string[] = []
  let previous = ''
  const start = Date.now()
  for (let i = 0; i < 5000; i++) {
    const id = uuidv7(start + Math.floor(i / 10))
    if (!FORMAT.test(id)) bad.push(id)
    if (id.slice(0, 13) !== previous.slice(0, 13) && id <= previous) bad.push(`${previous} then ${id}`)
    seen.add(id)
    previous = id
  }
  t.same(bad, [], 'every id well formed, later milliseconds sort later')
  t.equal(seen.size, 5000)
  // Every random hex position varies (no byte stuck at a constant).
  const sample = [...seen].slice(0, 500)
  for (const pos of [15, 16, 17, 20, 21, 22, 24, 30, 35]) {
    t.ok(new Set(sample.map(s => s[pos])).size > 4, `position ${pos} varies`)
  }
})

t.test('sha256 matches a Hash object in both encodings', async t => {
  const { createHash } = await import('node:crypto')
  for (const s of ['', 'tenant\u0000subject', 'ünïcødé ✓']) {
    t.equal(sha256(s, 'hex'), createHash('sha256').update(s).digest('hex'))
    t.equal(sha256(s, 'base64url'), createHash('sha256').update(s).digest('base64url'))
  }
})

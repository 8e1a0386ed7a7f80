import { randomFillSync } from 'node:crypto'

const pool = Buffer.alloc(10 * 256)
let offset = pool.length

/** A UUIDv7 (RFC 9562): time-ordered, so decision ids sort by time in logs and stores. */
export function uuidv7 (nowMs: number = Date.now()): string {
  if (offset + 10 > pool.length) { randomFillSync(pool); offset = 0 }
  const b = Buffer.alloc(16)
  b.writeUIntBE(nowMs, 0, 6)
  pool.copy(b, 6, offset, offset + 10)
  offset += 10
  b[6] = (b[6]! & 0x0f) | 0x70
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

import * as crypto from 'node:crypto'

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
// Random bytes are drawn in blocks (as `randomUUID` does internally): one fill per 409 ids.
const pool = Buffer.allocUnsafe(4096)
let used = pool.length

/**
 * A UUIDv7 (RFC 9562): time-ordered, so decision ids sort by time in logs and stores. 48 bits
 * of milliseconds, then 74 random bits from the CSPRNG, with the version and variant bits set.
 */
export function uuidv7 (nowMs: number = Date.now()): string {
  if (used + 10 > pool.length) { crypto.randomFillSync(pool); used = 0 }
  const b = pool
  const i = used
  used += 10
  const ts = Math.floor(nowMs).toString(16).padStart(12, '0').slice(-12)
  return `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7${(b[i]! & 0x0f).toString(16)}${HEX[b[i + 1]!]}-`
    + `${HEX[(b[i + 2]! & 0x3f) | 0x80]}${HEX[b[i + 3]!]}-`
    + `${HEX[b[i + 4]!]}${HEX[b[i + 5]!]}${HEX[b[i + 6]!]}${HEX[b[i + 7]!]}${HEX[b[i + 8]!]}${HEX[b[i + 9]!]}`
}

type Encoding = 'hex' | 'base64url'
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: Encoding) => string }).hash
/** SHA-256 of a string: Node's one-shot `crypto.hash` where it exists (20.12+), else a Hash object. */
export const sha256 = oneShot !== undefined
  ? (data: string, encoding: Encoding): string => oneShot('sha256', data, encoding)
  : (data: string, encoding: Encoding): string => crypto.createHash('sha256').update(data).digest(encoding)

/**
 * What device ids and payee ids are salted with: the tenant (length-prefixed, so an empty tenant
 * is not no tenant) and the subject. One user's ids then cannot be looked up in a table built for everyone.
 */
export const subjectSalt = (tenant: string | undefined, subject: string): string =>
  `${tenant === undefined ? '' : `${tenant.length}:${tenant}`}\u0000${subject}`

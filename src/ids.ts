import { randomUUID } from 'node:crypto'

/**
 * A UUIDv7 (RFC 9562): time-ordered, so decision ids sort by time in logs and stores. The 74
 * random bits come from `randomUUID` (a v4 whose variant bits are already right).
 */
export function uuidv7 (nowMs: number = Date.now()): string {
  const ts = nowMs.toString(16).padStart(12, '0').slice(-12)
  const r = randomUUID()
  return `${ts.slice(0, 8)}-${ts.slice(8, 12)}-7${r.slice(15, 18)}-${r.slice(19)}`
}

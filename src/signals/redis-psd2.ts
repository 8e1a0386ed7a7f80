/**
 * The payment state on Redis and Redis Cluster, on the history store's client, key prefix and
 * per-subject `{h}` hash tag (key layout in redis-history.ts). Every call is one Lua script
 * (one round trip) touching only keys of the subject's slot, so each call is atomic, on Cluster too.
 */
import type { SubjectKey } from './history.js'
import { READ_EPOCH_LUA } from './redis-epoch.js'
import { checkPayment, checkSca, checkWindow, PSD2_CAPS, PSD2_LOSS_MARGIN, PSD2_TTL, toSecond, withinWindow, type Psd2Query, type Psd2State, type Psd2Store } from './psd2.js'

type Reply = Array<string | number | null>

/**
 * KEYS[1] exemption counters, KEYS[2] trusted payees, KEYS[3] failures, KEYS[4] the spent-SCA
 * key, KEYS[5] the epoch key (either: any key of the slot when unused). ARGV[1] '1' = check the
 * linked SCA, ARGV[2] '1' = check ARGV[3] (a payee id), ARGV[4] '1' = read the failures,
 * ARGV[5] '' or an epoch to write when none exists (with the linked check).
 * Returns { count, cents, spent, trusted, epoch or '', failures... }.
 */
const READ_LUA = `${READ_EPOCH_LUA}
local counters = redis.call('HMGET', KEYS[1], 'n', 'c')
local out = { tonumber(counters[1]) or 0, tonumber(counters[2]) or 0, 0, 0, '' }
if ARGV[1] == '1' then
  out[3] = redis.call('EXISTS', KEYS[4])
  out[5] = read_epoch(KEYS[5], ARGV[5])
end
if ARGV[2] == '1' and redis.call('ZSCORE', KEYS[2], ARGV[3]) then out[4] = 1 end
if ARGV[4] == '1' then
  local failures = redis.call('LRANGE', KEYS[3], 0, -1)
  for i = 1, #failures do out[i + 5] = failures[i] end
end
return out
`

/**
 * KEYS[1] exemption counters. ARGV: cents, '1' = limited, limit count, limit cents, ttl.
 * Counts the payment when within the limit; renews the expiry. Returns 1 when counted.
 */
const EXEMPT_LUA = `
if ARGV[2] == '1' then
  local v = redis.call('HMGET', KEYS[1], 'n', 'c')
  local count, cents = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  if not (count < tonumber(ARGV[3]) and cents + tonumber(ARGV[1]) <= tonumber(ARGV[4])) then return 0 end
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], 'c', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
`

/**
 * KEYS[1] the spent-SCA key, KEYS[2] exemption counters, KEYS[3] failures, KEYS[4] trusted
 * payees. ARGV: spent ttl, '1' = trust ARGV[3], payee id, now (seconds), payee cap, payee ttl.
 * Returns 0 when already spent; else spends it, resets counters and failures, trusts the payee.
 */
const COMPLETE_LUA = `
if not redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[5]) + 1))
  redis.call('EXPIRE', KEYS[4], ARGV[6])
end
return 1
`

/**
 * KEYS[1] failures (a list, ascending). ARGV: now (seconds), kept only when later than ARGV[2],
 * cap, ttl. Adds now, drops the old ones, keeps the newest `cap`, renews the expiry.
 */
const FAILURE_LUA = `
local kept = {}
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local at = tonumber(v)
  if at and at > tonumber(ARGV[2]) then kept[#kept + 1] = v end
end
kept[#kept + 1] = ARGV[1]
table.sort(kept, function (a, b) return tonumber(a) < tonumber(b) end)
redis.call('DEL', KEYS[1])
local cap = tonumber(ARGV[3])
local first = #kept > cap and #kept - cap + 1 or 1
redis.call('RPUSH', KEYS[1], unpack(kept, first))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 0
`

/** The commands this store defines on the history store's client. */
export interface Psd2Commands {
  psd2Read: (counters: string, trusted: string, failures: string, spent: string, epoch: string, ...args: string[]) => Promise<Reply>
  psd2Exempt: (counters: string, ...args: string[]) => Promise<number>
  psd2Complete: (spent: string, counters: string, failures: string, trusted: string, ...args: string[]) => Promise<number>
  psd2Failure: (failures: string, ...args: string[]) => Promise<unknown>
  psd2Clear: (failures: string) => Promise<unknown>
}

export function definePsd2Commands (client: { defineCommand: (name: string, definition: { lua: string, numberOfKeys: number }) => void }): void {
  client.defineCommand('psd2Read', { lua: READ_LUA, numberOfKeys: 5 })
  client.defineCommand('psd2Exempt', { lua: EXEMPT_LUA, numberOfKeys: 1 })
  client.defineCommand('psd2Complete', { lua: COMPLETE_LUA, numberOfKeys: 4 })
  client.defineCommand('psd2Failure', { lua: FAILURE_LUA, numberOfKeys: 1 })
  client.defineCommand('psd2Clear', { lua: "return redis.call('DEL', KEYS[1])", numberOfKeys: 1 })
}

export interface RedisPsd2Deps {
  client: Psd2Commands
  /** Runs one command, rejecting by the deadline (the history store's `call`). */
  call: <T>(operation: string, send: () => Promise<T>) => Promise<T>
  ns: string
  subjectHash: (key: SubjectKey) => string
  /** Data-loss detection (standalone Redis only), shared with the once-only reads. */
  epoch?: {
    key: string
    /** A fresh epoch to write when none exists. */
    candidate: () => string
    /** The epoch a read saw. */
    note: (seen: string, now: number) => void
    /** When (the caller's clock) a loss was last seen; -Infinity when never. */
    lostAt: () => number
  } | undefined
}

const count = (raw: string | number | null | undefined): number => {
  const n = Number(raw ?? 0)
  if (!Number.isSafeInteger(n)) throw new Error('psd2 store: malformed counter')
  return n
}

export function createRedisPsd2Store (deps: RedisPsd2Deps): Psd2Store {
  const { client, call, ns, subjectHash, epoch } = deps
  const countersKey = (h: string): string => `${ns}px:{${h}}`
  const trustedKey = (h: string): string => `${ns}pb:{${h}}`
  const failuresKey = (h: string): string => `${ns}pf:{${h}}`
  const spentKey = (h: string, authTime: number, txHash: string): string => `${ns}ps:{${h}}:${authTime}:${txHash}`
  const seconds = (s: number): string => String(Math.max(1, Math.ceil(s)))

  return {
    async read (key: SubjectKey, query: Psd2Query, now: number): Promise<Psd2State> {
      const h = subjectHash(key)
      const linked = query.linked
      const checkEpoch = epoch !== undefined && linked !== undefined
      const reply = await call('psd2 read', () => client.psd2Read(
        countersKey(h), trustedKey(h), failuresKey(h),
        linked === undefined ? countersKey(h) : spentKey(h, linked.authTime, linked.txHash),
        checkEpoch ? epoch.key : countersKey(h),
        linked === undefined ? '0' : '1',
        query.payeeId === undefined ? '0' : '1', query.payeeId ?? '',
        query.lockoutWindow === undefined ? '0' : '1',
        checkEpoch ? epoch.candidate() : ''))
      if (!Array.isArray(reply) || reply.length < 5) throw new Error('psd2 store: unexpected reply')

      const out: Psd2State = { exempted: { count: count(reply[0]), cents: count(reply[1]) }, failures: [] }
      if (linked !== undefined) {
        if (checkEpoch) epoch.note(String(reply[4]), now)
        const lostAt = epoch?.lostAt() ?? -Infinity
        if (linked.authTime <= lostAt + PSD2_LOSS_MARGIN) {
          out.linkedUnavailable = `history store lost its data (restarted empty?): a payment authenticated before ${new Date((lostAt + PSD2_LOSS_MARGIN) * 1000).toISOString()} cannot be checked for reuse`
        } else {
          out.linkedConsumed = Number(reply[2]) === 1
        }
      }
      if (query.payeeId !== undefined) out.trustedPayee = Number(reply[3]) === 1
      const window = query.lockoutWindow
      if (window !== undefined) {
        out.failures = reply.slice(5).map(Number).filter(at => Number.isFinite(at) && withinWindow(at, now, window)).sort((a, b) => a - b)
      }
      return out
    },

    async exempt (key, payment, _now): Promise<boolean> {
      checkPayment(payment)
      const limit = payment.limit
      const reply = await call('psd2 exempt', () => client.psd2Exempt(
        countersKey(subjectHash(key)),
        String(payment.cents), limit === undefined ? '0' : '1', String(limit?.count ?? 0), String(limit?.cents ?? 0), String(PSD2_TTL)))
      return Number(reply) === 1
    },

    async completeSca (key, sca, now): Promise<boolean> {
      checkSca(sca)
      const h = subjectHash(key)
      const reply = await call('psd2 completeSca', () => client.psd2Complete(
        spentKey(h, sca.authTime, sca.txHash), countersKey(h), failuresKey(h), trustedKey(h),
        seconds(sca.ttl), sca.trustPayeeId === undefined ? '0' : '1', sca.trustPayeeId ?? '',
        String(toSecond(now)), String(PSD2_CAPS.trustedPayees), String(PSD2_TTL)))
      return Number(reply) === 1
    },

    async clearFailures (key): Promise<void> {
      await call('psd2 clearFailures', () => client.psd2Clear(failuresKey(subjectHash(key))))
    },

    async recordFailure (key, now, window): Promise<void> {
      checkWindow(window)
      await call('psd2 recordFailure', () => client.psd2Failure(
        failuresKey(subjectHash(key)),
        String(toSecond(now)), String(now - window), String(PSD2_CAPS.failures), seconds(window)))
    }
  }
}

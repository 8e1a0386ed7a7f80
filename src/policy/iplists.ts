/**
 * IP lists (docs/policies.md#ip-lists): each list compiles to sorted, merged address ranges, searched by
 * bisection, so a lookup costs O(log n) whatever the list size. An IPv6 address that carries
 * an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo: ../signals/ip.ts) is matched as
 * that IPv4 address too, so `::c000:20a` or `2002:c000:20a::1` cannot dodge a list of
 * 192.0.2.0/24; it still matches IPv6 entries as itself (a list may hold `2002::/16`).
 */
import ipaddr from 'ipaddr.js'
import type { PolicyProblem } from '../errors.js'
import type { IpListMatcher } from '../engine/policy-set.js'
import type { ListSource } from './source.js'
import { clientAddress } from '../signals/ip.js'

interface Ranges { starts: bigint[], ends: bigint[] }

const toBigInt = (bytes: number[]): bigint => bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n)

/** Parses an address into its family and numeric value; undefined when invalid. */
export function parseAddress (ip: string): { v6: boolean, value: bigint, normalized: string } | undefined {
  if (!ipaddr.isValid(ip)) return undefined
  const addr = ipaddr.process(ip)
  return { v6: addr.kind() === 'ipv6', value: toBigInt(addr.toByteArray()), normalized: addr.toString() }
}

function rangeOf (entry: string): { v6: boolean, start: bigint, end: bigint } | undefined {
  try {
    const [addr, bits] = entry.includes('/') ? ipaddr.parseCIDR(entry) : [ipaddr.parse(entry), undefined]
    let a = addr
    let prefix = bits
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) {
      a = (a as ipaddr.IPv6).toIPv4Address()
      prefix = prefix === undefined ? undefined : prefix - 96
      if (prefix !== undefined && prefix < 0) return undefined
    }
    const width = a.kind() === 'ipv6' ? 128 : 32
    const p = BigInt(prefix ?? width)
    const value = toBigInt(a.toByteArray())
    const hostBits = BigInt(width) - p
    const start = (value >> hostBits) << hostBits
    return { v6: a.kind() === 'ipv6', start, end: start + (1n << hostBits) - 1n }
  } catch {
    return undefined
  }
}

function merge (ranges: Array<{ start: bigint, end: bigint }>): Ranges {
  ranges.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  const out: Ranges = { starts: [], ends: [] }
  for (const r of ranges) {
    const last = out.ends.length - 1
    if (last >= 0 && r.start <= out.ends[last]! + 1n) {
      if (r.end > out.ends[last]!) out.ends[last] = r.end
    } else {
      out.starts.push(r.start)
      out.ends.push(r.end)
    }
  }
  return out
}

function contains (ranges: Ranges, value: bigint): boolean {
  let lo = 0
  let hi = ranges.starts.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (value < ranges.starts[mid]!) hi = mid - 1
    else if (value > ranges.ends[mid]!) lo = mid + 1
    else return true
  }
  return false
}

/** Dotted IPv4 (or IPv4-mapped IPv6) to its value, without BigInt: the common case, kept fast. */
function ipv4Value (ip: string): bigint | undefined {
  const dotted = ip.startsWith('::ffff:') || ip.startsWith('::FFFF:') ? ip.slice(7) : ip
  const parts = dotted.split('.')
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    value = value * 256 + n
  }
  return BigInt(value)
}

export function compileIpLists (sources: ListSource[], problems: PolicyProblem[]): IpListMatcher {
  const lists: Array<{ name: string, v4: Ranges, v6: Ranges }> = []
  for (const source of sources) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(source.name)) {
      problems.push({ file: source.file, line: 1, col: 1, field: '(list)', code: 'bad_list', message: 'a list name has letters, digits, ".", "_", "-" (at most 64)', severity: 'error' })
      continue
    }
    const v4: Array<{ start: bigint, end: bigint }> = []
    const v6: Array<{ start: bigint, end: bigint }> = []
    source.text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim()
      if (line === '') return
      const range = rangeOf(line)
      if (!range) {
        problems.push({ file: source.file, line: i + 1, col: 1, field: '(entry)', code: 'bad_list', message: `"${line}" is not an IPv4/IPv6 address or CIDR`, severity: 'error' })
        return
      }
      ;(range.v6 ? v6 : v4).push(range)
    })
    lists.push({ name: source.name, v4: merge(v4), v6: merge(v6) })
  }
  return {
    names: lists.map(l => l.name),
    lookup: ip => {
      if (lists.length === 0) return []
      const v4 = ipv4Value(ip)
      if (v4 !== undefined) return lists.filter(l => contains(l.v4, v4)).map(l => l.name)
      const addr = clientAddress(ip)
      if (!addr) return []
      const v6 = addr.ipv4 === addr.address ? undefined : toBigInt(ipaddr.parse(addr.address).toByteArray())
      const carried = addr.ipv4 === undefined ? undefined : toBigInt(ipaddr.parse(addr.ipv4).toByteArray())
      return lists.filter(l => (v6 !== undefined && contains(l.v6, v6)) || (carried !== undefined && contains(l.v4, carried))).map(l => l.name)
    }
  }
}

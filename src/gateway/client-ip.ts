/**
 * The client address behind proxies: the rightmost `X-Forwarded-For` entry that is not a
 * trusted proxy, when the peer itself is trusted; else the peer. Only the rightmost entries are
 * read (a client can prepend as many as it likes), and an entry a trusted proxy wrote that is
 * not an address means the address is unknown, never guessed.
 */
import ipaddr from 'ipaddr.js'

const MAX_HOPS = 32

type Parsed = ipaddr.IPv4 | ipaddr.IPv6

const parse = (text: string): Parsed | undefined => {
  let s = text.trim()
  if (s.startsWith('[')) s = s.slice(1, s.indexOf(']') === -1 ? undefined : s.indexOf(']'))
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(s)) s = s.slice(0, s.lastIndexOf(':'))
  if (s.length > 64 || !ipaddr.isValid(s)) return undefined
  // Dotted quads only: ipaddr.js also reads "1" or "0x7f.1" as IPv4, which no proxy writes.
  if (!s.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(s)) return undefined
  try { return ipaddr.process(s) } catch { return undefined }
}

export type ClientIpResolver = (peer: string | undefined, forwardedFor: string | string[] | undefined) => string | undefined

export function clientIpResolver (trustedCidrs: readonly string[]): ClientIpResolver {
  const ranges = trustedCidrs.map(c => ipaddr.parseCIDR(c))
  const trusted = (ip: Parsed): boolean => ranges.some(([range, bits]) => {
    if (ip.kind() !== range.kind()) return false
    return ip.match(range, bits)
  })
  return (peer, forwardedFor) => {
    const peerIp = peer === undefined ? undefined : parse(peer)
    if (peerIp === undefined) return undefined
    if (!trusted(peerIp) || forwardedFor === undefined) return peerIp.toString()
    const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor
    // Walk from the right; at most MAX_HOPS entries, however long the header.
    let end = header.length
    let last: Parsed = peerIp
    for (let hop = 0; hop < MAX_HOPS && end > 0; hop++) {
      const start = header.lastIndexOf(',', end - 1)
      const entry = header.slice(start + 1, end)
      end = start === -1 ? 0 : start
      if (entry.trim() === '') continue
      const ip = parse(entry)
      if (ip === undefined) return undefined
      if (!trusted(ip)) return ip.toString()
      last = ip
    }
    return last.toString()
  }
}

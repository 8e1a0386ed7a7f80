/**
 * The IPv4 address inside an IPv6 spelling. A client can reach us, or claim to, under several
 * IPv6 forms that carry an IPv4 address; an IP list or geo lookup that sees only the IPv6 form
 * is dodged by respelling (`::c000:20a` for 192.0.2.10). Every such form is read back to the
 * IPv4 address before list and geo lookups:
 *
 * | form                        | prefix             | where the IPv4 address is        |
 * |-----------------------------|--------------------|----------------------------------|
 * | IPv4-mapped (RFC 4291)      | ::ffff:0:0/96      | last 32 bits                     |
 * | IPv4-translated (RFC 6145)  | ::ffff:0:0:0/96    | last 32 bits                     |
 * | IPv4-compatible (RFC 4291)  | ::/96 (not ::, ::1)| last 32 bits                     |
 * | NAT64 well-known (RFC 6052) | 64:ff9b::/96       | last 32 bits                     |
 * | 6to4 (RFC 3056)             | 2002::/16          | bits 16-47                       |
 * | Teredo (RFC 4380)           | 2001::/32          | last 32 bits, inverted (client)  |
 */
import ipaddr from 'ipaddr.js'

export interface ClientAddress {
  /** The address as given, canonical (IPv6 compressed, lower case). */
  address: string
  /** The IPv4 address the spelling carries: the address itself for IPv4. */
  ipv4?: string
}

const dotted = (b: number[], at: number): string => `${b[at]!}.${b[at + 1]!}.${b[at + 2]!}.${b[at + 3]!}`

const zero = (b: number[], from: number, to: number): boolean => b.slice(from, to).every(x => x === 0)

/** The IPv4 address an IPv6 address embeds (see the table above), or undefined. */
export function embeddedIpv4 (bytes: number[]): string | undefined {
  if (bytes.length !== 16) return undefined
  if (zero(bytes, 0, 10)) {
    if (bytes[10] === 0xff && bytes[11] === 0xff) return dotted(bytes, 12) // ::ffff:a.b.c.d
    if (bytes[10] === 0 && bytes[11] === 0) {
      // ::a.b.c.d, but :: (unspecified) and ::1 (loopback) are IPv6 addresses of their own.
      return zero(bytes, 12, 15) && (bytes[15] === 0 || bytes[15] === 1) ? undefined : dotted(bytes, 12)
    }
  }
  if (zero(bytes, 0, 8) && bytes[8] === 0xff && bytes[9] === 0xff && bytes[10] === 0 && bytes[11] === 0) return dotted(bytes, 12) // ::ffff:0:a.b.c.d
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zero(bytes, 4, 12)) return dotted(bytes, 12) // 64:ff9b::a.b.c.d
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return dotted(bytes, 2) // 2002:AABB:CCDD::
  if (bytes[0] === 0x20 && bytes[1] === 0x01 && bytes[2] === 0 && bytes[3] === 0) {
    const client = bytes.slice(12).map(b => b ^ 0xff) // Teredo obfuscates the client address
    return dotted(client, 0)
  }
  return undefined
}

/** Parses a client address; undefined when it is not an IPv4 or IPv6 address. */
export function clientAddress (ip: string): ClientAddress | undefined {
  if (!ipaddr.isValid(ip)) return undefined
  let addr: ipaddr.IPv4 | ipaddr.IPv6
  try { addr = ipaddr.parse(ip) } catch { return undefined }
  if (addr.kind() === 'ipv4') {
    // ipaddr.js accepts the classful spellings of inet_aton (`3221225994`, `0xc0.0.2.10`); the
    // schema admits only dotted quads, and the canonical form is what lists and geo see.
    return { address: addr.toString(), ipv4: addr.toString() }
  }
  const v6 = addr as ipaddr.IPv6
  const ipv4 = embeddedIpv4(v6.toByteArray())
  return ipv4 !== undefined ? { address: v6.toString(), ipv4 } : { address: v6.toString() }
}

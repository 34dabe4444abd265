import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/**
 * An address a peer announced (mDNS record, mesh-discovery announcement), parsed, with the peer id
 * it names last (a relayed address names the relay first and the peer itself last); null when it
 * is not a multiaddr. Announcements are hostile input: the caller decides what a name may be.
 */
export function announcedAddress(input: string | Uint8Array): { addr: Multiaddr; peer: string | undefined } | null {
  let addr: Multiaddr
  try {
    addr = multiaddr(input)
  } catch {
    return null
  }
  const named = addr.getComponents().filter((c) => c.name === 'p2p')
  return { addr, peer: named[named.length - 1]?.value }
}

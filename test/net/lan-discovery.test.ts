import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { MAX_ANNOUNCED_ADDRS, MDNS_SERVICE_TAG } from '../../src/net/constants.js'
import { peerOfResponse } from '../../src/net/lan-discovery.js'

/*
 * mDNS answers come from any host on the LAN: one is taken only if it is for Shoal's service and
 * every address in it names the same peer (not this one), at most MAX_ANNOUNCED_ADDRS of them.
 * (Discovery between real hosts without a default route runs in `npm run test:hosts`.)
 */

const somePeer = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const ptr = { name: MDNS_SERVICE_TAG, type: 'PTR', data: `x.${MDNS_SERVICE_TAG}` }
const txt = (...addrs: string[]) => addrs.map((a) => ({ name: `x.${MDNS_SERVICE_TAG}`, type: 'TXT', data: `dnsaddr=${a}` }))

describe('mDNS answers', () => {
  it('give the peer and its addresses, in answers or additionals, as strings or bytes', async () => {
    const peer = await somePeer()
    const a = `/ip4/198.18.0.11/tcp/4001/p2p/${peer}`
    const b = `/ip4/198.18.0.11/tcp/4002/ws/p2p/${peer}`
    const info = peerOfResponse({ answers: [ptr, ...txt(a)], additionals: [{ name: 'x', type: 'TXT', data: [Buffer.from(`dnsaddr=${b}`)] }] }, MDNS_SERVICE_TAG, 'me')
    expect(info?.id.toString()).toBe(peer)
    expect(info?.multiaddrs.map(String)).toEqual([a, b])
  })

  it('are refused when they name two peers, this peer, no peer, too many addresses, or another service', async () => {
    const [peer, other] = [await somePeer(), await somePeer()]
    const mine = `/ip4/198.18.0.11/tcp/4001/p2p/${peer}`
    expect(peerOfResponse({ answers: [ptr, ...txt(mine, `/ip4/198.18.0.12/tcp/4001/p2p/${other}`)] }, MDNS_SERVICE_TAG, 'me')).toBeNull()
    expect(peerOfResponse({ answers: [ptr, ...txt(mine)] }, MDNS_SERVICE_TAG, peer)).toBeNull()
    expect(peerOfResponse({ answers: [ptr, ...txt('/ip4/198.18.0.11/tcp/4001')] }, MDNS_SERVICE_TAG, 'me')).toBeNull()
    const many = Array.from({ length: MAX_ANNOUNCED_ADDRS + 1 }, (_, i) => `/ip4/198.18.0.11/tcp/${5000 + i}/p2p/${peer}`)
    expect(peerOfResponse({ answers: [ptr, ...txt(...many)] }, MDNS_SERVICE_TAG, 'me')).toBeNull()
    expect(peerOfResponse({ answers: [{ ...ptr, name: '_other._udp.local' }, ...txt(mine)] }, MDNS_SERVICE_TAG, 'me')).toBeNull()
    expect(peerOfResponse({ answers: [ptr, ...txt('/not/a/multiaddr')] }, MDNS_SERVICE_TAG, 'me')).toBeNull()
    expect(peerOfResponse({ answers: [ptr, ...txt(`/ip4/198.18.0.11/tcp/4001/p2p/notapeerid`)] }, MDNS_SERVICE_TAG, 'me')).toBeNull()
    expect(peerOfResponse({}, MDNS_SERVICE_TAG, 'me')).toBeNull()
  })
})

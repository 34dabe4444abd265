/*
 * peers.json: the peers this peer has been connected to, with their last known addresses, so a
 * restarted peer redials its mesh even without a bootstrap list (and after libp2p's in-memory peer
 * store, whose addresses also expire after an hour, has forgotten them). It is a cache: a missing
 * or unreadable book just means "no known peers yet". Shared by the Node and browser ports.
 */
export interface PeerBookEntry {
  id: string
  addrs: string[]
  /** Milliseconds since the epoch when this peer was last connected. */
  lastSeen: number
  /** Time this peer has spent connected to it, in all (how useful it has been). */
  connectedMs?: number
}

/** The entries of a peer book's text; anything malformed is skipped. */
export function parsePeerBook(text: string): PeerBookEntry[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return []
  }
  if (typeof parsed !== 'object' || parsed === null) return []
  const peers = (parsed as { peers?: unknown }).peers
  if (!Array.isArray(peers)) return []
  const out: PeerBookEntry[] = []
  for (const p of peers as unknown[]) {
    if (typeof p !== 'object' || p === null) continue
    const { id, addrs, lastSeen, connectedMs } = p as Record<string, unknown>
    if (typeof id !== 'string' || typeof lastSeen !== 'number' || !Array.isArray(addrs)) continue
    out.push({ id, lastSeen, addrs: addrs.filter((a): a is string => typeof a === 'string'), ...(typeof connectedMs === 'number' && connectedMs >= 0 ? { connectedMs } : {}) })
  }
  return out
}

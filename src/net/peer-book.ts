import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'

/**
 * peers.json: the peers this peer has been connected to, with their last known addresses, so a
 * restarted peer redials its mesh even without a bootstrap list (and after libp2p's in-memory peer
 * store, whose addresses also expire after an hour, has forgotten them). It is a cache: a missing
 * or unreadable file just means "no known peers yet".
 */
export interface PeerBookEntry {
  id: string
  addrs: string[]
  /** Milliseconds since the epoch when this peer was last connected. */
  lastSeen: number
  /** Time this peer has spent connected to it, in all (how useful it has been). */
  connectedMs?: number
}

interface PeerBookFile {
  version: 1
  peers: PeerBookEntry[]
}

export async function loadPeerBook(file: string): Promise<PeerBookEntry[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return []
  }
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

/** Replace the file atomically (temp file, fsync, rename). */
export async function savePeerBook(file: string, peers: PeerBookEntry[]): Promise<void> {
  const body: PeerBookFile = { version: 1, peers }
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'w', 0o600)
    try {
      await handle.writeFile(JSON.stringify(body, null, 2) + '\n')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, file)
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw error
  }
}

import type { Cut } from '../core/faults.js'
import type { RealPeer } from './real-peer.js'

/*
 * The network between real-stack peers: cuts (partitions of every shape) as predicates over peer
 * pairs. Each peer's libp2p connection gater asks allowed() before dialling or accepting a peer;
 * when a cut begins, open connections across it are closed at once; when it ends, the pairs it
 * separated are dialled again (the mesh keeper would redial too, after its backoff).
 */

export type { Cut }

export class RealNetwork {
  private readonly cuts = new Map<number, Cut>()
  private nextCut = 0

  constructor(private readonly peers: readonly RealPeer[]) {}

  allowed(a: number, b: number): boolean {
    for (const cut of this.cuts.values()) if (cut(a, b)) return false
    return true
  }

  /** Puts a cut in force (closing the connections it separates); returns the function that lifts it. */
  addCut(cut: Cut): () => void {
    const id = this.nextCut++
    this.cuts.set(id, cut)
    this.enforce()
    return () => {
      if (this.cuts.delete(id)) void this.connectAll()
    }
  }

  /** The cuts changed: close connections between peers that may no longer reach each other. */
  enforce(): void {
    for (const a of this.peers) {
      if (a.peer === null) continue
      for (const b of this.peers) if (b !== a && !this.allowed(a.index, b.index)) a.cutFrom(b.peerId)
    }
  }

  clear(): void {
    this.cuts.clear()
  }

  /** Dials every pair of running peers that may reach each other and are not connected. */
  async connectAll(): Promise<void> {
    const dials: Array<Promise<void>> = []
    for (const a of this.peers) {
      for (const b of this.peers) {
        if (b.index <= a.index || !a.isUp() || !b.isUp() || !this.allowed(a.index, b.index) || a.connectedTo(b.peerId)) continue
        const node = a.peer!.node
        // A dial may race a crash or a new cut: the next connectAll (or the mesh keeper) retries.
        dials.push(node.dial(b.address, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined))
      }
    }
    await Promise.all(dials)
  }

  /** Whether every pair of running peers that may reach each other is connected. */
  fullyConnected(): boolean {
    for (const a of this.peers) {
      for (const b of this.peers) {
        if (b.index <= a.index || !a.isUp() || !b.isUp() || !this.allowed(a.index, b.index)) continue
        if (!a.connectedTo(b.peerId) || !b.connectedTo(a.peerId)) return false
      }
    }
    return true
  }
}

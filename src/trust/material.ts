/**
 * What a peer of a private mesh brings to its start, read from its mesh folder
 * (peer/mesh-folder.ts): the secret that lets it connect at all, and the signed documents that say
 * what it and the others may do (docs/trust.md).
 */
export interface MeshMaterial {
  /** The mesh id: the authority's Ed25519 public key as a libp2p peer id (12D3Koo…). */
  mesh: string
  /** The pre-shared key, as the libp2p swarm key file holds it (`/key/swarm/psk/1.0.0/` …). */
  swarmKey: Uint8Array
  /**
   * Signed documents known at start (documents.ts encodeSigned bytes): this peer's admission,
   * the rules, revocations. Each is checked again by Membership; none is trusted for being local.
   */
  documents: Uint8Array[]
}

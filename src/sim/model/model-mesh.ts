import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encodeSigned, meshIdOf, signDocument } from '../../trust/documents.js'
import { Membership } from '../../trust/membership.js'
import type { Roles } from '../core/roles.js'
import { rulesOf } from '../core/roles.js'
import type { Rng } from '../core/rng.js'
import type { Scenario } from '../core/scenario.js'

/*
 * The trust material of a model-mode mesh with roles: an authority key (the mesh id), a key per
 * peer (its author id), the rules and every peer's admission as real signed documents, and per peer
 * a Membership that has checked them. Keys are derived from the scenario's seed, so a run replays.
 */

/** What a model peer knows and holds of its mesh. */
export interface PeerTrust {
  mesh: string
  /** This peer's id: the author of its changesets, and its engines' actor. */
  author: string
  key: PrivateKey
  membership: Membership
  /**
   * The signed admission of a peer, as it would present it on connecting (a peer takes it in the
   * first time it meets a changeset of that author, as the handshake would have brought it).
   */
  admissionOf: (peer: string) => Uint8Array | undefined
  /** False only in tests: accept deltas whatever their author's rights. */
  enforced: boolean
}

/** Model-time 0 as wall time, for admissions' validity (fixed, so a run replays). */
const SIM_EPOCH_MS = Date.UTC(2026, 0, 1)
const ADMISSION_MS = 10 * 365 * 24 * 3_600_000

export class ModelMesh {
  private constructor(
    private readonly mesh: string,
    private readonly keys: PrivateKey[],
    private readonly authors: string[],
    private readonly rules: Uint8Array,
    private readonly admissions: Map<string, Uint8Array>,
    private readonly enforced: boolean,
    private readonly now: () => number,
  ) {}

  static async create(scenario: Scenario, roles: Roles, rng: Rng, now: () => number): Promise<ModelMesh> {
    const seed = (): Uint8Array => Uint8Array.from({ length: 32 }, () => rng.int(0, 255))
    const authority = await generateKeyPairFromSeed('Ed25519', seed())
    const mesh = meshIdOf(authority.publicKey)
    const keys: PrivateKey[] = []
    for (let i = 0; i < scenario.peers; i++) keys.push(await generateKeyPairFromSeed('Ed25519', seed()))
    const authors = keys.map((k) => peerIdFromPrivateKey(k).toString())
    const rules = encodeSigned(await signDocument(rulesOf(roles.spec, mesh, SIM_EPOCH_MS), authority))
    const admissions = new Map<string, Uint8Array>()
    for (let i = 0; i < scenario.peers; i++) {
      const member = roles.spec.members[i]!
      const admission = { kind: 'admission' as const, mesh, peer: authors[i]!, group: member.group, partitions: member.partitions, issuedAt: SIM_EPOCH_MS, expiresAt: SIM_EPOCH_MS + ADMISSION_MS, serial: `sim-${i}` }
      admissions.set(authors[i]!, encodeSigned(await signDocument(admission, authority)))
    }
    return new ModelMesh(mesh, keys, authors, rules, admissions, roles.enforced, now)
  }

  /** Peer `index`'s trust: its key, and a membership that has taken in the rules and its own admission. */
  async trustFor(index: number): Promise<PeerTrust> {
    const membership = new Membership(this.mesh, () => SIM_EPOCH_MS + this.now())
    await membership.add(this.rules)
    await membership.admit(this.authors[index]!, this.admissions.get(this.authors[index]!)!)
    return {
      mesh: this.mesh,
      author: this.authors[index]!,
      key: this.keys[index]!,
      membership,
      admissionOf: (peer) => this.admissions.get(peer),
      enforced: this.enforced,
    }
  }
}

import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { ForbiddenError } from '../errors.js'
import { loadOrCreatePeerKey } from '../net/identity.js'
import type { MeshStatus } from '../status.js'
import type { ChangeSigner, LocalWriteGuard } from '../store/core.js'
import { TrustGate } from '../sync/trust-gate.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { signChangeset } from '../trust/changeset.js'
import { TrustError } from '../trust/errors.js'
import type { JoinMaterial } from '../trust/join-code.js'
import { Membership, type Member } from '../trust/membership.js'

/**
 * A peer's trust in a private mesh (docs/trust.md): its key and admission, the membership it
 * enforces, and what the store, replication and the HTTP API take from it (a signer for its own
 * changes, a guard refusing writes outside its rights, the gate checking everything peers send).
 */
export class PeerTrust {
  readonly gate: TrustGate
  readonly signer: ChangeSigner
  readonly guard: LocalWriteGuard
  private readonly refused = new Map<string, { reason: string; at: string }>()

  private constructor(
    readonly self: string,
    readonly membership: Membership,
    /** This peer's own signed admission, presented on every connection. */
    readonly admission: Uint8Array,
    key: PrivateKey,
  ) {
    this.gate = new TrustGate(membership)
    this.signer = { mesh: membership.mesh, author: self, sign: (c) => signChangeset(c, key) }
    this.guard = (table, partition) => {
      if (membership.mayWrite(self, table, partition)) return
      const member = membership.member(self)
      const who = member === null ? 'this peer is no longer a member of the mesh' : `this peer's group '${member.group}' may not write`
      const what = table === CATALOG_TABLE ? `table definitions (${CATALOG_TABLE})` : `table '${table}'${partition === '' ? '' : ` in partition ${JSON.stringify(partition)}`}`
      throw new ForbiddenError(`${who} ${what} (mesh rules version ${membership.rules?.version ?? 0}); ask the mesh authority to change the rules or this peer's admission`)
    }
  }

  /** Reads the peer's key from its data folder and checks the mesh documents; TrustError if this peer is not a member. */
  static async load(material: JoinMaterial, dataDir: string): Promise<PeerTrust> {
    const key = await loadOrCreatePeerKey(dataDir)
    const self = peerIdFromPrivateKey(key).toString()
    const membership = new Membership(material.mesh)
    let own: Uint8Array | null = null
    for (const doc of material.documents) {
      const { document } = await membership.add(doc)
      if (document.kind === 'admission' && document.peer === self) own = doc
    }
    if (own === null) {
      throw new TrustError('NOT_ADMITTED', `this peer (${self}) has no admission to mesh ${material.mesh} in its mesh folder: on the authority's machine run 'shoal mesh admit --peer ${self} …' and copy the member folder it writes here`)
    }
    await membership.admit(self, own)
    if (membership.rules === null) throw new TrustError('RULES_MISSING', `the mesh folder holds no rules signed by the authority of ${material.mesh}: run 'shoal mesh rules' on the authority's machine and copy the member folder again`)
    return new PeerTrust(self, membership, own, key)
  }

  get mesh(): string {
    return this.membership.mesh
  }

  /** Takes in signed documents an operator hands this peer (shoal mesh publish): each checked; spread to peers by the admission service. */
  async addDocuments(documents: readonly Uint8Array[]): Promise<Array<{ kind: string; outcome: string }>> {
    const out: Array<{ kind: string; outcome: string }> = []
    for (const bytes of documents) {
      const { document, outcome } = await this.membership.add(bytes)
      out.push({ kind: document.kind, outcome })
    }
    return out
  }

  /** Tables this peer may define (write the schema catalog). */
  mayDefineTables(): boolean {
    return this.membership.mayWrite(this.self, CATALOG_TABLE, '')
  }

  noteRefused(peer: string, reason: string): void {
    this.refused.delete(peer)
    this.refused.set(peer, { reason, at: new Date().toISOString() })
    if (this.refused.size > 100) this.refused.delete(this.refused.keys().next().value!)
  }

  status(connected: readonly string[]): MeshStatus {
    const me: Member | null = this.membership.member(this.self)
    const rules = this.membership.rules
    const rights: MeshStatus['rights'] = []
    if (me !== null && rules !== null) {
      const tables = [...Object.keys(rules.tables), '*']
      for (const table of tables) {
        const rule = table === '*' ? rules.otherTables : rules.tables[table]!
        const grant = (grants: Readonly<Record<string, '*' | 'own'>>): '*' | string[] => {
          const g = grants[me.group] ?? grants['*']
          return g === undefined ? [] : g === '*' ? '*' : [...me.partitions]
        }
        rights.push({ table, write: grant(rule.write), read: grant(rule.read) })
      }
    }
    const summary = this.membership.summary()
    return {
      mesh: this.mesh,
      group: me?.group ?? '(not a member)',
      partitions: [...(me?.partitions ?? [])],
      expiresAt: me === null ? '' : new Date(me.expiresAt).toISOString(),
      rulesVersion: summary.rulesVersion,
      revocations: summary.revocations,
      rights,
      admittedPeers: connected.filter((p) => this.membership.member(p) !== null),
      refusedPeers: [...this.refused].map(([peer, r]) => ({ peer, ...r })),
    }
  }
}

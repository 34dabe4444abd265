import type { Changeset } from '../trust/changeset.js'
import { verifyChangeset } from '../trust/changeset.js'
import { TrustError } from '../trust/errors.js'
import type { Membership } from '../trust/membership.js'

/*
 * What a private-mesh peer checks of everything a peer sends it (docs/trust.md): a changeset is
 * taken only if it is signed by its author, the author is a member now (admitted, not expired,
 * not revoked), and the rules let the author's group write that (table, partition). Who delivered
 * it does not matter: a relaying peer cannot launder what it could not write itself.
 */
export class TrustGate {
  constructor(readonly membership: Membership) {}

  get mesh(): string {
    return this.membership.mesh
  }

  /** The signed changeset if it may be taken; TrustError saying why not otherwise. */
  async verify(bytes: Uint8Array): Promise<Changeset> {
    const changeset = await verifyChangeset(bytes, this.mesh)
    const member = this.membership.requireMember(changeset.author)
    if (!this.membership.mayWrite(member.peer, changeset.table, changeset.partition)) {
      throw new TrustError('FORBIDDEN', `changeset of ${changeset.author} (group '${member.group}') to ${changeset.table}/${JSON.stringify(changeset.partition)} refused: the mesh rules do not let that group write there`)
    }
    return changeset
  }

  /** True if this peer holds a current admission of `peer`. */
  knows(peer: string): boolean {
    return this.membership.member(peer) !== null
  }

  /** May `author` write (table, partition) now? */
  mayWrite(author: string, table: string, partition: string): boolean {
    return this.membership.mayWrite(author, table, partition)
  }

  /** May `peer` receive rows of (table, partition)? */
  readable(peer: string, table: string, partition: string): boolean {
    return this.membership.mayRead(peer, table, partition)
  }

  /** Takes in another member's admission (relayed with its changesets); TrustError if it is not valid. */
  async learn(admission: Uint8Array): Promise<void> {
    const { document } = await this.membership.add(admission)
    if (document.kind !== 'admission') throw new TrustError('NOT_ADMITTED', `expected an admission, got a ${document.kind}`)
    this.membership.requireMember(document.peer)
  }

  admissionOf(peer: string): Uint8Array | null {
    return this.membership.admissionOf(peer)
  }
}

import { ShoalError } from '../errors.js'
import type { ReplicaSource } from '../store/replica-source.js'
import type { Changeset } from '../trust/changeset.js'
import { isCarried, type Carries } from './carries.js'
import type { ChangesetReplica, RefusalSink } from './replica.js'
import type { AuthorRanges } from './sync-messages.js'
import type { TrustGate } from './trust-gate.js'

/** A store's changeset log as a private mesh's anti-entropy sees it: every changeset checked by the gate before the store sees it. */
export class StoreChangesets implements ChangesetReplica {
  constructor(
    private readonly source: ReplicaSource,
    private readonly gate: TrustGate,
    private readonly carried: Carries,
    private readonly onRefused: RefusalSink,
  ) {}

  readable(peer: string, table: string, partition: string): boolean {
    return this.gate.readable(peer, table, partition)
  }

  clock(table: string, partition: string): AuthorRanges[] {
    return this.source.changesetClock(table, partition)
  }

  read(table: string, partition: string, author: string, ranges: ReadonlyArray<readonly [number, number]>, maxBytes: number): Promise<{ changesets: Uint8Array[]; next: number | null }> {
    return this.source.readChangesets(table, partition, author, ranges, maxBytes)
  }

  async apply(table: string, partition: string, changesets: readonly Uint8Array[], from: string): Promise<{ changed: number; refused: number }> {
    if (!isCarried(this.carried, table, partition, (t, p) => this.source.holds(t, p))) {
      this.onRefused('NOT_CARRIED', `${changesets.length} changesets of ${table}/${JSON.stringify(partition)} from ${from} refused: that partition is not carried here`, from)
      return { changed: 0, refused: changesets.length }
    }
    let changed = 0
    let refused = 0
    // Verified in parallel (signatures dominate); merged as one group commit.
    const outcomes = await Promise.allSettled(
      changesets.map(async (bytes) => {
        const changeset = await this.gate.verify(bytes)
        if (changeset.table !== table || changeset.partition !== partition) {
          throw new ShoalError('CHANGESET_MISPLACED', `changeset of ${changeset.table}/${JSON.stringify(changeset.partition)} sent as one of ${table}/${JSON.stringify(partition)}`)
        }
        return this.source.applyChangeset(changeset, bytes, from)
      }),
    )
    outcomes.forEach((o) => {
      if (o.status === 'fulfilled') {
        if (o.value === 'changed') changed++
        return
      }
      refused++
      const reason = o.reason instanceof ShoalError ? o.reason.code : 'INTERNAL'
      this.onRefused(reason, `changeset of ${table}/${JSON.stringify(partition)} from ${from} refused: ${(o.reason as Error).message}`, from)
    })
    return { changed, refused }
  }

  /** Verifies and merges one changeset that arrived on its own (gossip); throws why if refused. */
  async take(bytes: Uint8Array, from: string): Promise<{ changeset: Changeset; changed: boolean }> {
    const changeset = await this.gate.verify(bytes)
    if (!isCarried(this.carried, changeset.table, changeset.partition, (t, p) => this.source.holds(t, p))) {
      throw new ShoalError('NOT_CARRIED', `changeset of ${changeset.table}/${JSON.stringify(changeset.partition)} refused: that partition is not carried here`)
    }
    return { changeset, changed: (await this.source.applyChangeset(changeset, bytes, from)) === 'changed' }
  }

  mayWrite(author: string, table: string, partition: string): boolean {
    return this.gate.mayWrite(author, table, partition)
  }

  knows(peer: string): boolean {
    return this.gate.knows(peer)
  }

  admissionOf(peer: string): Uint8Array | null {
    return this.gate.admissionOf(peer)
  }

  learn(admission: Uint8Array): Promise<void> {
    return this.gate.learn(admission)
  }
}

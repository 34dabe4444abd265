import { parsePartitionId, partitionId } from '../table/ids.js'
import { SeqRanges } from '../trust/seq-ranges.js'
import type { StoreCore } from './core.js'
import { prefixEnd, SEP } from './layout.js'

/*
 * The changeset log of a private mesh (docs/trust.md): every signed changeset this store holds,
 * by (table, partition, author, seq), kept beside the rows it changed so anti-entropy can ship
 * the originals (a merged row carries no signature). In memory: which sequence numbers of which
 * author each partition holds, and this peer's own next sequence number per partition.
 *
 *   log   table␀partition␀author␀seq(14 hex digits) → signed changeset bytes
 *   meta  seq␀table␀partition                      → this peer's last seq there
 */

const SEQ_DIGITS = 14
/** Changesets returned by one read at most (the sync protocol's MAX_CHANGESETS_PER_FRAME). */
export const MAX_CHANGESETS_PER_READ = 4096
export const SEQ_PREFIX = `seq${SEP}`

export function logKey(pid: string, author: string, seq: number): string {
  return `${pid}${SEP}${author}${SEP}${seq.toString(16).padStart(SEQ_DIGITS, '0')}`
}

export function logPrefix(pid: string, author?: string): string {
  return author === undefined ? `${pid}${SEP}` : `${pid}${SEP}${author}${SEP}`
}

export interface LogEntry {
  pid: string
  author: string
  seq: number
}

interface KeyIterable {
  keys(options: { gte: string; lt: string }): AsyncIterable<string>
}

interface MetaIterable {
  iterator(options: { gte: string; lt: string }): AsyncIterable<[string, string]>
}

export class ChangeLog {
  /** pid → author → sequence numbers held. */
  private readonly held = new Map<string, Map<string, SeqRanges>>()
  /** pid → this peer's last sequence number there. */
  private readonly ownSeq = new Map<string, number>()

  async load(log: KeyIterable, meta: MetaIterable): Promise<void> {
    for await (const key of log.keys({ gte: '', lt: prefixEnd('') })) {
      const parts = key.split(SEP)
      if (parts.length !== 4) continue
      const [table, partition, author, seq] = parts as [string, string, string, string]
      this.add({ pid: partitionId(table, partition), author, seq: parseInt(seq, 16) })
    }
    for await (const [key, value] of meta.iterator({ gte: SEQ_PREFIX, lt: prefixEnd(SEQ_PREFIX) })) this.ownSeq.set(key.slice(SEQ_PREFIX.length), Number(value))
  }

  /** What this store holds of a partition: author → sequence numbers. */
  heldOf(table: string, partition: string): ReadonlyMap<string, SeqRanges> {
    return this.held.get(partitionId(table, partition)) ?? new Map()
  }

  has(entry: LogEntry): boolean {
    return this.held.get(entry.pid)?.get(entry.author)?.has(entry.seq) ?? false
  }

  /** This peer's next sequence numbers in a partition (reserved at commit: see committed). */
  lastOwnSeq(pid: string): number {
    return this.ownSeq.get(pid) ?? 0
  }

  /** Moves the in-memory view once a batch holding these entries is durable. */
  committed(entries: readonly LogEntry[], ownSeqs: ReadonlyMap<string, number>): void {
    for (const e of entries) this.add(e)
    for (const [pid, seq] of ownSeqs) this.ownSeq.set(pid, seq)
  }

  /** Partitions (as [table, partition]) holding log entries. */
  partitions(): Array<{ table: string; partition: string }> {
    return [...this.held.keys()].map(parsePartitionId)
  }

  private add(e: LogEntry): void {
    let authors = this.held.get(e.pid)
    if (authors === undefined) this.held.set(e.pid, (authors = new Map()))
    let ranges = authors.get(e.author)
    if (ranges === undefined) authors.set(e.author, (ranges = new SeqRanges()))
    ranges.add(e.seq)
  }
}

/**
 * Logged changesets of one author in a partition within `ranges` (ascending), in sequence order,
 * about `maxBytes` (at least one) and at most `maxCount`; `next`: the sequence number to go on from, or null at the end.
 */
export async function readLoggedChangesets(
  core: StoreCore,
  table: string,
  partition: string,
  author: string,
  ranges: ReadonlyArray<readonly [number, number]>,
  maxBytes: number,
  maxCount: number,
): Promise<{ changesets: Uint8Array[]; next: number | null }> {
  const pid = partitionId(table, partition)
  const out: Uint8Array[] = []
  let bytes = 0
  for (const [from, to] of ranges) {
    for await (const [key, value] of core.levels.changes.iterator({ gte: logKey(pid, author, from), lte: logKey(pid, author, to) })) {
      if (out.length >= maxCount || (out.length > 0 && bytes + value.length > maxBytes)) return { changesets: out, next: parseInt(key.slice(key.lastIndexOf(SEP) + 1), 16) }
      out.push(value)
      bytes += value.length
    }
  }
  return { changesets: out, next: null }
}

import { DIGEST_TREE_DEPTH, DIGEST_TREE_FANOUT_BITS } from '../constants.js'
import { ProtocolError, ShoalError } from '../errors.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { LEAF_COUNT, TREE_FANOUT } from '../table/digest-tree.js'
import { equalBytes, isZeroBytes as isZero } from '../table/hash.js'
import { isCarried, type Carries } from './carries.js'
import { compareRoots, pageOfRoots, type ChangesetReplica, type SyncReplica } from './replica.js'
import { SeqRanges } from '../trust/seq-ranges.js'
import { partitionId } from '../table/ids.js'
import {
  MAX_FRAME_BYTES,
  MAX_KEYS_PER_REQUEST,
  MAX_NODES_PER_REQUEST,
  MAX_CHANGESETS_PER_FRAME,
  MAX_CLOCK_AUTHORS,
  MAX_CLOCK_RANGES,
  MAX_ROOTS_PER_FRAME,
  NODE_HASH_BYTES,
  type AuthorRanges,
  type PartitionRoot,
  type RangeCursor,
  type RowBytes,
  type SyncRequest,
  type SyncResponse,
} from './sync-messages.js'

/*
 * Anti-entropy between two replicas, Merkle-style over the digest trees:
 *   1. hello: both sides' carry specs and digest roots. Equal roots ⇒ that partition is done, so
 *      two peers in sync exchange one small message per shared partition, whatever the row count.
 *   2. Where roots differ, descend level by level, asking only for the children of differing
 *      nodes. A big subtree that one side lacks entirely is transferred as a range walk (this is
 *      how an empty peer loads everything: it is just anti-entropy from nothing).
 *   3. At the leaves, compare (key, row hash) lists; fetch rows only the other side has, push rows
 *      only this side has, and for rows both hold exchange engine deltas against each other's
 *      versions. Both directions in one round, driven by the initiator.
 * The responder side is `answer`: stateless, one response per request.
 */

export type Ask = (request: SyncRequest) => Promise<SyncResponse>

export interface LoadProgressEvent {
  table: string
  partition: string
  received: number
  expected: number
  done: boolean
}

export interface ReconcileOptions {
  /** The remote peer's id: the origin recorded on rows merged from it. */
  from: string
  /** Target size of range pages and push batches (default 256 KiB). */
  pageBytes?: number
  /** Rows received for one partition, as they arrive (for progress bars). */
  onProgress?: (event: LoadProgressEvent) => void
  signal?: AbortSignal
}

export interface RoundStats {
  /** Partitions both sides carry. */
  shared: number
  /** Of those, partitions whose roots differed. */
  differing: number
  /** Rows (whole or deltas) received from the peer and sent to it. */
  rowsReceived: number
  rowsSent: number
  /** Rows this replica's state changed for, and the peer's (as it reported). */
  changedHere: number
  changedThere: number
  /** Rows refused on either side (bad bytes, unknown table, partition not carried). */
  refused: number
  /** Partitions that could not be reconciled, with why (the round goes on with the others). */
  errors: string[]
}

export const DEFAULT_PAGE_BYTES = 256 * 1024
/** Partition roots taken from one peer in a round: MAX_TABLES × MAX_PARTITIONS_PER_TABLE would not fit in memory anyway. */
export const MAX_REMOTE_ROOTS = 1_000_000
/** A subtree one side lacks entirely is range-walked if it spans at least this many leaves; smaller ones are descended. */
const RANGE_MIN_LEAVES = TREE_FANOUT ** 2
const FETCH_FRAME_BUDGET = MAX_FRAME_BYTES - 32 * 1024

class SyncRefusedError extends ShoalError {
  constructor(code: string, message: string) {
    super(code, message)
  }
}

async function request<T extends SyncResponse['type']>(ask: Ask, req: SyncRequest, expect: T): Promise<Extract<SyncResponse, { type: T }>> {
  const res = await ask(req)
  if (res.type === 'error') throw new SyncRefusedError(res.code, `peer refused '${req.type}': ${res.message} (${res.code})`)
  if (res.type !== expect) throw new ProtocolError(`peer answered '${req.type}' with '${res.type}'`)
  return res as Extract<SyncResponse, { type: T }>
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Splits rows into batches of about `bytes` (at least one row each). */
function byBytes(rows: readonly RowBytes[], bytes: number): RowBytes[][] {
  const out: RowBytes[][] = []
  let current: RowBytes[] = []
  let size = 0
  for (const row of rows) {
    if (current.length > 0 && size + row.bytes.length > bytes) {
      out.push(current)
      current = []
      size = 0
    }
    current.push(row)
    size += row.bytes.length + row.key.length + 8
  }
  if (current.length > 0) out.push(current)
  return out
}

interface PartitionPlan {
  table: string
  partition: string
  local: PartitionRoot | undefined
  remote: PartitionRoot | undefined
}

/** Runs one anti-entropy round as the initiator. Errors of one partition are recorded, not thrown. */
export async function reconcile(local: SyncReplica, ask: Ask, options: ReconcileOptions): Promise<RoundStats> {
  const stats: RoundStats = { shared: 0, differing: 0, rowsReceived: 0, rowsSent: 0, changedHere: 0, changedThere: 0, refused: 0, errors: [] }
  // The peer learns of our first page of partitions (for its own bookkeeping); we page all of its.
  const mine = pageOfRoots(local.roots(), null, MAX_ROOTS_PER_FRAME)
  const hello = await request(ask, { type: 'hello', carries: local.carries(), roots: mine.roots, next: mine.next }, 'hello')
  const remoteRoots = [...hello.roots]
  let next = hello.next
  while (next !== null) {
    options.signal?.throwIfAborted()
    if (remoteRoots.length >= MAX_REMOTE_ROOTS) throw new ProtocolError(`peer lists more than ${MAX_REMOTE_ROOTS} partitions`)
    const page = await request(ask, { type: 'roots', after: next }, 'roots')
    for (const r of page.roots) if (compareRoots(r, next) <= 0) throw new ProtocolError('peer sent a page of partition roots that does not move forward')
    remoteRoots.push(...page.roots)
    next = page.next
    if (next !== null && page.roots.length === 0) throw new ProtocolError('peer sent an empty page of partition roots with more to come')
  }
  const session = new Session(local, ask, options, stats, hello.carries, remoteRoots)
  // The catalog first: rows of a table can only be merged once its schema is known here.
  await session.run((table) => table === CATALOG_TABLE)
  await session.run((table) => table !== CATALOG_TABLE)
  return stats
}

class Session {
  private readonly pageBytes: number
  private readonly remoteHeld: Set<string>
  private readonly done = new Set<string>()

  constructor(
    private readonly local: SyncReplica,
    private readonly ask: Ask,
    private readonly options: ReconcileOptions,
    private readonly stats: RoundStats,
    private readonly remoteCarries: Carries,
    private readonly remoteRoots: PartitionRoot[],
  ) {
    this.pageBytes = Math.min(options.pageBytes ?? DEFAULT_PAGE_BYTES, FETCH_FRAME_BUDGET)
    this.remoteHeld = new Set(remoteRoots.map((r) => partitionId(r.table, r.partition)))
  }

  async run(select: (table: string) => boolean): Promise<void> {
    const localRoots = this.local.roots()
    const plans = new Map<string, PartitionPlan>()
    for (const r of localRoots) plans.set(partitionId(r.table, r.partition), { table: r.table, partition: r.partition, local: r, remote: undefined })
    for (const r of this.remoteRoots) {
      const id = partitionId(r.table, r.partition)
      const plan = plans.get(id)
      if (plan === undefined) plans.set(id, { table: r.table, partition: r.partition, local: undefined, remote: r })
      else plan.remote = r
    }
    const localCarries = this.local.carries()
    const localHolds = (table: string, partition: string): boolean => this.local.holds(table, partition)
    const remoteHolds = (table: string, partition: string): boolean => this.remoteHeld.has(partitionId(table, partition))
    for (const [id, plan] of [...plans].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (this.done.has(id) || !select(plan.table)) continue
      if (!this.local.knowsTable(plan.table)) continue
      if (!isCarried(localCarries, plan.table, plan.partition, localHolds)) continue
      if (!isCarried(this.remoteCarries, plan.table, plan.partition, remoteHolds)) continue
      this.done.add(id)
      this.stats.shared++
      const localRoot = plan.local?.root
      const remoteRoot = plan.remote?.root
      if (localRoot !== undefined && remoteRoot !== undefined && equalBytes(localRoot, remoteRoot)) continue
      this.stats.differing++
      this.options.signal?.throwIfAborted()
      try {
        await this.partition(plan)
      } catch (error) {
        if (this.options.signal?.aborted === true) throw error
        if (!(error instanceof ShoalError)) throw error
        this.stats.errors.push(`${plan.table}/${plan.partition}: ${error.message}`)
      }
    }
  }

  private async partition(plan: PartitionPlan): Promise<void> {
    const { table, partition } = plan
    const localEmpty = plan.local === undefined || isZero(plan.local.root)
    const remoteEmpty = plan.remote === undefined || isZero(plan.remote.root)
    const progress = new Progress(table, partition, Math.max(0, (plan.remote?.rows ?? 0) - (plan.local?.rows ?? 0)), this.options.onProgress)
    try {
      if (this.local.changesets !== undefined) await this.exchangeChangesets(this.local.changesets, table, partition, progress)
      else if (localEmpty) await this.pullRange(table, partition, 0, LEAF_COUNT, progress)
      else if (remoteEmpty) await this.pushRange(table, partition, 0, LEAF_COUNT)
      else await this.descend(table, partition, progress)
    } finally {
      progress.finish()
    }
  }

  /**
   * Private meshes: compare which changesets each side holds (per author, sequence ranges), fetch
   * the ones only the peer has, offer the ones only this side has (if the peer may read them).
   */
  private async exchangeChangesets(log: ChangesetReplica, table: string, partition: string, progress: Progress): Promise<void> {
    const theirs = await request(this.ask, { type: 'clock', table, partition }, 'clock')
    const mine = new Map(log.clock(table, partition).map((a) => [a.author, SeqRanges.from(a.ranges)]))
    const remote = new Map(theirs.authors.map((a) => [a.author, SeqRanges.from(a.ranges)]))
    for (const [author, held] of remote) {
      const wanted = held.missingFrom(mine.get(author) ?? new SeqRanges())
      if (wanted.length > 0 && !(await this.learnAuthor(log, author))) continue
      while (wanted.length > 0) {
        this.options.signal?.throwIfAborted()
        const asked = wanted.slice(0, MAX_CLOCK_RANGES)
        const res = await request(this.ask, { type: 'changesets', table, partition, author, ranges: asked, maxBytes: this.pageBytes }, 'changesets')
        if (res.changesets.length > 0) {
          const result = await log.apply(table, partition, res.changesets, this.options.from)
          this.stats.rowsReceived += res.changesets.length
          this.stats.changedHere += result.changed
          this.stats.refused += result.refused
          progress.add(res.changesets.length)
        }
        if (res.next === null) {
          wanted.splice(0, asked.length)
          continue
        }
        if (res.changesets.length === 0) throw new ProtocolError('peer sent an empty page of changesets with more to come')
        // Go on from where the peer stopped: drop the ranges (and the part of one) already sent.
        const from = res.next
        while (wanted.length > 0 && wanted[0]![1] < from) wanted.shift()
        if (wanted.length > 0 && wanted[0]![0] < from) wanted[0] = [from, wanted[0]![1]]
      }
    }
    if (!log.readable(this.options.from, table, partition)) return
    for (const [author, held] of mine) {
      const theyLack = held.missingFrom(remote.get(author) ?? new SeqRanges())
      let ranges = theyLack.slice(0, MAX_CLOCK_RANGES)
      while (ranges.length > 0) {
        this.options.signal?.throwIfAborted()
        const page = await log.read(table, partition, author, ranges, this.pageBytes)
        if (page.changesets.length > 0) {
          for (let i = 0; i < page.changesets.length; i += MAX_CHANGESETS_PER_FRAME) {
            const batch = page.changesets.slice(i, i + MAX_CHANGESETS_PER_FRAME)
            const res = await request(this.ask, { type: 'offer', table, partition, changesets: batch }, 'offer')
            this.stats.rowsSent += batch.length
            this.stats.changedThere += res.applied
            this.stats.refused += res.refused
          }
        }
        if (page.next === null) break
        const from = page.next
        ranges = ranges.filter(([, to]) => to >= from).map(([a, b]) => [Math.max(a, from), b] as [number, number])
      }
    }
  }

  /** Makes sure the author of changesets the peer relays is known here: asks the peer for its admission. */
  private async learnAuthor(log: ChangesetReplica, author: string): Promise<boolean> {
    if (log.knows(author)) return true
    const res = await request(this.ask, { type: 'admission', peer: author }, 'admission')
    if (res.admission === null) {
      this.stats.errors.push(`changesets of ${author} skipped: the peer holds them but no admission of their author`)
      return false
    }
    try {
      await log.learn(res.admission)
      return true
    } catch (error) {
      if (!(error instanceof ShoalError)) throw error
      this.stats.errors.push(`changesets of ${author} skipped: ${error.message}`)
      return false
    }
  }

  private async descend(table: string, partition: string, progress: Progress): Promise<void> {
    let frontier = [0]
    for (let level = 0; level < DIGEST_TREE_DEPTH && frontier.length > 0; level++) {
      const next: number[] = []
      const childSpan = TREE_FANOUT ** (DIGEST_TREE_DEPTH - level - 1)
      for (const nodes of chunks(frontier, MAX_NODES_PER_REQUEST)) {
        const [remote, mine] = await Promise.all([
          request(this.ask, { type: 'children', table, partition, level, nodes }, 'children'),
          this.local.children(table, partition, level, nodes),
        ])
        const expected = nodes.length * TREE_FANOUT * NODE_HASH_BYTES
        if (remote.hashes.length !== expected) throw new ProtocolError(`peer sent ${remote.hashes.length} bytes of child hashes for ${nodes.length} nodes; expected ${expected}`)
        for (let i = 0; i < nodes.length; i++) {
          for (let c = 0; c < TREE_FANOUT; c++) {
            const at = (i * TREE_FANOUT + c) * NODE_HASH_BYTES
            const theirs = remote.hashes.subarray(at, at + NODE_HASH_BYTES)
            const ours = mine.subarray(at, at + NODE_HASH_BYTES)
            if (equalBytes(theirs, ours)) continue
            const child = (nodes[i]! << DIGEST_TREE_FANOUT_BITS) | c
            if (childSpan >= RANGE_MIN_LEAVES && isZero(ours)) await this.pullRange(table, partition, child * childSpan, (child + 1) * childSpan, progress)
            else if (childSpan >= RANGE_MIN_LEAVES && isZero(theirs)) await this.pushRange(table, partition, child * childSpan, (child + 1) * childSpan)
            else next.push(child)
          }
        }
      }
      frontier = next
    }
    for (const leaves of chunks(frontier, MAX_NODES_PER_REQUEST)) await this.compareLeaves(table, partition, leaves, progress)
  }

  private async compareLeaves(table: string, partition: string, leaves: number[], progress: Progress): Promise<void> {
    const [remote, mine] = await Promise.all([request(this.ask, { type: 'leaves', table, partition, leaves }, 'leaves'), this.local.leafRows(table, partition, leaves)])
    const wanted = new Set(leaves)
    const theirs = new Map<string, Uint8Array>()
    for (const row of remote.rows) {
      if (!wanted.has(row.leaf)) throw new ProtocolError(`peer listed row '${row.key}' in leaf ${row.leaf}, which was not asked for`)
      theirs.set(row.key, row.hash)
    }
    const onlyTheirs: string[] = []
    const onlyOurs: string[] = []
    const both: string[] = []
    const ours = new Map(mine.map((r) => [r.key, r.hash]))
    for (const [key, hash] of theirs) {
      const mineHash = ours.get(key)
      if (mineHash === undefined) onlyTheirs.push(key)
      else if (!equalBytes(mineHash, hash)) both.push(key)
    }
    for (const key of ours.keys()) if (!theirs.has(key)) onlyOurs.push(key)

    if (onlyTheirs.length > 0) await this.fetchRows(table, partition, onlyTheirs.map((key) => ({ key, version: null })), progress)
    if (onlyOurs.length > 0) {
      const rows = await this.local.fetch(table, partition, onlyOurs.map((key) => ({ key, version: null })))
      await this.push(table, partition, rows.flatMap((r) => (r.bytes === null ? [] : [{ key: r.key, bytes: r.bytes }])))
    }
    if (both.length > 0) {
      // Both hold the row and differ: send our version, get what we lack and their version back,
      // then send what they lack. Deltas, not whole rows.
      const items = await Promise.all(both.map(async (key) => ({ key, version: await this.local.version(table, partition, key) })))
      const theirVersions = await this.fetchRows(table, partition, items, progress)
      // Rows that now hash as theirs did need nothing sent back (a Yjs delta is never empty: it
      // always carries the delete set, so "is there a delta" cannot tell).
      const leavesNow = await this.local.leafRows(table, partition, [...new Set(remote.rows.filter((r) => theirVersions.has(r.key)).map((r) => r.leaf))])
      const sameNow = new Set(leavesNow.filter((r) => theirVersions.has(r.key) && theirs.has(r.key) && equalBytes(r.hash, theirs.get(r.key)!)).map((r) => r.key))
      const back: RowBytes[] = []
      for (const [key, version] of theirVersions) {
        if (sameNow.has(key)) continue
        const delta = await this.local.deltaSince(table, partition, key, version)
        if (delta !== null) back.push({ key, bytes: delta })
      }
      await this.push(table, partition, back)
    }
  }

  /** Fetches rows (re-asking for any the peer left out to keep its answer under the frame cap); returns the peer's versions. */
  private async fetchRows(table: string, partition: string, items: Array<{ key: string; version: Uint8Array | null }>, progress: Progress): Promise<Map<string, Uint8Array>> {
    const versions = new Map<string, Uint8Array>()
    let pending = items
    while (pending.length > 0) {
      const batch = pending.slice(0, MAX_KEYS_PER_REQUEST)
      const res = await request(this.ask, { type: 'fetch', table, partition, items: batch }, 'fetch')
      if (res.rows.length === 0) throw new ProtocolError('peer answered a fetch with no rows at all')
      const asked = new Set(batch.map((i) => i.key))
      const rows: RowBytes[] = []
      for (const row of res.rows) {
        if (!asked.delete(row.key)) throw new ProtocolError(`peer sent row '${row.key}', which was not asked for (or sent it twice)`)
        if (row.version !== null) versions.set(row.key, row.version)
        if (row.bytes !== null) rows.push({ key: row.key, bytes: row.bytes })
      }
      await this.applyHere(table, partition, rows, progress)
      pending = [...batch.filter((i) => asked.has(i.key)), ...pending.slice(batch.length)]
    }
    return versions
  }

  /** Walks the peer's rows in leaves [from, to) page by page, applying each page while the next one is on its way. */
  private async pullRange(table: string, partition: string, from: number, to: number, progress: Progress): Promise<void> {
    let after: RangeCursor | null = null
    let page = request(this.ask, { type: 'range', table, partition, from, to, after, maxBytes: this.pageBytes }, 'range')
    for (;;) {
      const res = await page
      if (res.next !== null) {
        if (res.next.leaf < from || res.next.leaf >= to || (after !== null && !cursorAfter(res.next, after))) throw new ProtocolError('peer sent a range cursor that does not move forward inside the range')
        after = res.next
        page = request(this.ask, { type: 'range', table, partition, from, to, after, maxBytes: this.pageBytes }, 'range')
        // Awaited on the next turn; until then a failure must not count as unhandled.
        page.catch(() => undefined)
      }
      await this.applyHere(table, partition, res.rows, progress)
      if (res.next === null) return
      this.options.signal?.throwIfAborted()
    }
  }

  private async pushRange(table: string, partition: string, from: number, to: number): Promise<void> {
    let after: RangeCursor | null = null
    for (;;) {
      const page = await this.local.range(table, partition, from, to, after, this.pageBytes)
      await this.push(table, partition, page.rows)
      if (page.next === null) return
      after = page.next
      this.options.signal?.throwIfAborted()
    }
  }

  private async push(table: string, partition: string, rows: readonly RowBytes[]): Promise<void> {
    for (const batch of byBytes(rows, this.pageBytes)) {
      const res = await request(this.ask, { type: 'push', table, partition, rows: batch }, 'push')
      this.stats.rowsSent += batch.length
      this.stats.changedThere += res.applied
      this.stats.refused += res.refused
    }
  }

  private async applyHere(table: string, partition: string, rows: readonly RowBytes[], progress: Progress): Promise<void> {
    if (rows.length === 0) return
    const result = await this.local.apply(table, partition, rows, this.options.from)
    this.stats.rowsReceived += rows.length
    this.stats.changedHere += result.changed
    this.stats.refused += result.refused
    progress.add(rows.length)
  }
}

function cursorAfter(a: RangeCursor, b: RangeCursor): boolean {
  return a.leaf > b.leaf || (a.leaf === b.leaf && a.key > b.key)
}

class Progress {
  private received = 0

  constructor(
    private readonly table: string,
    private readonly partition: string,
    private readonly expected: number,
    private readonly report: ReconcileOptions['onProgress'],
  ) {}

  add(rows: number): void {
    this.received += rows
    this.report?.({ table: this.table, partition: this.partition, received: this.received, expected: Math.max(this.expected, this.received), done: false })
  }

  finish(): void {
    if (this.received > 0) this.report?.({ table: this.table, partition: this.partition, received: this.received, expected: Math.max(this.expected, this.received), done: true })
  }
}

/**
 * Answers one request from a peer, from this replica. Stateless. Never throws: problems become
 * error responses, so a misbehaving peer gets told and this peer goes on.
 */
export async function answer(local: SyncReplica, req: SyncRequest, from: string): Promise<SyncResponse> {
  try {
    const log = local.changesets
    if (log !== undefined) {
      const refusal = trustedRefusal(log, req, from)
      if (refusal !== null) return refusal
    }
    // In a private mesh a peer learns only of partitions it may read.
    const roots = (): PartitionRoot[] => (log === undefined ? local.roots() : local.roots().filter((r) => log.readable(from, r.table, r.partition)))
    switch (req.type) {
      case 'hello':
        return { type: 'hello', carries: local.carries(), ...pageOfRoots(roots(), null, MAX_ROOTS_PER_FRAME) }
      case 'roots':
        return { type: 'roots', ...pageOfRoots(roots(), req.after, MAX_ROOTS_PER_FRAME) }
      case 'children':
        return { type: 'children', hashes: await local.children(req.table, req.partition, req.level, req.nodes) }
      case 'leaves':
        return { type: 'leaves', rows: await local.leafRows(req.table, req.partition, req.leaves) }
      case 'range':
        return { type: 'range', ...(await local.range(req.table, req.partition, req.from, req.to, req.after, Math.min(req.maxBytes, FETCH_FRAME_BUDGET))) }
      case 'fetch': {
        const rows = await local.fetch(req.table, req.partition, req.items)
        // Keep the answer under the frame cap; the asker re-asks for what was left out.
        const out: typeof rows = []
        let bytes = 0
        for (const row of rows) {
          const size = (row.bytes?.length ?? 0) + (row.version?.length ?? 0) + row.key.length + 16
          if (out.length > 0 && bytes + size > FETCH_FRAME_BUDGET) break
          out.push(row)
          bytes += size
        }
        return { type: 'fetch', rows: out }
      }
      case 'push': {
        if (!local.knowsTable(req.table)) return { type: 'error', code: 'TABLE_UNKNOWN', message: `table '${req.table}' is not known here` }
        if (!isCarried(local.carries(), req.table, req.partition, (t, p) => local.holds(t, p))) {
          return { type: 'error', code: 'NOT_CARRIED', message: `this peer does not carry partition '${req.partition}' of table '${req.table}'` }
        }
        const result = await local.apply(req.table, req.partition, req.rows, from)
        return { type: 'push', applied: result.changed, refused: result.refused }
      }
      case 'clock':
      case 'changesets':
      case 'offer':
      case 'admission':
        if (log === undefined) return { type: 'error', code: 'NOT_PRIVATE', message: 'this peer is in an open mesh: it replicates rows, not changesets' }
        return await answerChangesets(local, log, req, from)
    }
  } catch (error) {
    const code = error instanceof ShoalError ? error.code : 'INTERNAL'
    return { type: 'error', code, message: (error as Error).message }
  }
}

/** Private meshes: row requests are refused (rows carry no author), and reads follow the read rules. */
function trustedRefusal(log: ChangesetReplica, req: SyncRequest, from: string): SyncResponse | null {
  switch (req.type) {
    case 'hello':
    case 'roots':
      return null
    case 'children':
    case 'leaves':
    case 'range':
    case 'fetch':
    case 'push':
      return { type: 'error', code: 'FORBIDDEN', message: `'${req.type}' is refused in a private mesh: changes travel as signed changesets (clock, changesets, offer)` }
    case 'clock':
    case 'changesets':
      if (log.readable(from, req.table, req.partition)) return null
      return { type: 'error', code: 'FORBIDDEN', message: `this peer's rules do not let you read partition '${req.partition}' of table '${req.table}'` }
    case 'offer':
    case 'admission':
      return null
  }
}

async function answerChangesets(local: SyncReplica, log: ChangesetReplica, req: Extract<SyncRequest, { type: 'clock' | 'changesets' | 'offer' | 'admission' }>, from: string): Promise<SyncResponse> {
  switch (req.type) {
    case 'admission':
      return { type: 'admission', admission: log.admissionOf(req.peer) }
    case 'clock': {
      const authors: AuthorRanges[] = log
        .clock(req.table, req.partition)
        .slice(0, MAX_CLOCK_AUTHORS)
        .map((a) => ({ author: a.author, ranges: a.ranges.slice(0, MAX_CLOCK_RANGES) }))
      return { type: 'clock', authors }
    }
    case 'changesets': {
      const page = await log.read(req.table, req.partition, req.author, req.ranges, Math.min(req.maxBytes, FETCH_FRAME_BUDGET))
      if (page.changesets.length > MAX_CHANGESETS_PER_FRAME) throw new ProtocolError(`replica read ${page.changesets.length} changesets for one page; at most ${MAX_CHANGESETS_PER_FRAME}`)
      return { type: 'changesets', changesets: page.changesets, next: page.next }
    }
    case 'offer': {
      if (!local.knowsTable(req.table)) return { type: 'error', code: 'TABLE_UNKNOWN', message: `table '${req.table}' is not known here` }
      if (!isCarried(local.carries(), req.table, req.partition, (t, p) => local.holds(t, p))) {
        return { type: 'error', code: 'NOT_CARRIED', message: `this peer does not carry partition '${req.partition}' of table '${req.table}'` }
      }
      const result = await log.apply(req.table, req.partition, req.changesets, from)
      return { type: 'offer', applied: result.changed, refused: result.refused }
    }
  }
}

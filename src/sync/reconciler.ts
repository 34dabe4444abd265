import { DIGEST_BYTES, DIGEST_TREE_DEPTH, DIGEST_TREE_FANOUT_BITS } from '../constants.js'
import { ProtocolError, ShoalError } from '../errors.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { LEAF_COUNT, leafOf, TREE_FANOUT } from '../table/digest-tree.js'
import { equalBytes, isZeroBytes as isZero } from '../table/hash.js'
import { isCarried, type Carries } from './carries.js'
import { exchangeChangesets } from './changeset-exchange.js'
import { compareRoots, pageOfRoots, type ChangesetReplica, type FeedReplica, type SyncReplica } from './replica.js'
import { BUSY_ELSEWHERE, FETCH_FRAME_BUDGET, newRoundStats, Progress, request, type Ask, type ReconcileOptions, type RoundStats } from './round-io.js'
import { partitionId } from '../table/ids.js'
import { MAX_FEED_KEYS, MAX_KEYS_PER_REQUEST, MAX_NODES_PER_REQUEST, MAX_ROOTS_PER_FRAME, NODE_HASH_BYTES, type PartitionRoot, type RangeCursor, type RowBytes } from './sync-messages.js'

/*
 * Anti-entropy between two replicas, Merkle-style over the digest trees:
 *   1. hello: both sides' carry specs and digest roots. Equal roots ⇒ that partition is done, so
 *      two peers in sync exchange one small message per shared partition, whatever the row count.
 *   1b. With a peer speaking the change feed (protocol 1.2.0), where roots differ and each side
 *      holds a position of the other's feed (marked at a hello or settle that found the roots
 *      equal): each side lists the rows it changed since the position the other holds, with their
 *      hashes (`changes`), those rows are brought in line as at the leaves (step 3), and `settle`
 *      compares the roots. Equal, both mark the new positions and the partition is done, for ~25
 *      bytes a changed row; else (a write meanwhile, too many changes, a wrong answer) step 2.
 *   2. Where roots differ, descend level by level, asking only for the children of differing
 *      nodes. A big subtree that one side lacks entirely is transferred as a range walk (this is
 *      how an empty peer loads everything: it is just anti-entropy from nothing). Where a level's
 *      child hashes show that most of the partition's rows differ (a peer back after many
 *      changes), the differing subtrees' rows are traded whole instead of descended to.
 *   3. At the leaves, compare (key, row hash) lists; fetch rows only the other side has, push rows
 *      only this side has, and for rows both hold exchange engine deltas against each other's
 *      versions. Both directions in one round, driven by the initiator.
 * The responder side is `answer`: stateless, one response per request.
 */



export type { Ask, LoadProgressEvent } from './round-io.js'
export { answer } from './responder.js'

export type { ReconcileOptions, RoundStats } from './round-io.js'
export { newRoundStats } from './round-io.js'

export const DEFAULT_PAGE_BYTES = 256 * 1024
/** Partition roots taken from one peer in a round: MAX_TABLES × MAX_PARTITIONS_PER_TABLE would not fit in memory anyway. */
export const MAX_REMOTE_ROOTS = 1_000_000
/** A subtree one side lacks entirely is range-walked if it spans at least this many leaves; smaller ones are descended. */
const RANGE_MIN_LEAVES = TREE_FANOUT ** 2
/**
 * Where at least this share of a partition's rows differ, the differing subtrees' rows are traded
 * whole instead of descended to: descending costs each differing row its share of child hashes,
 * its leaf entry, its version and a delta (~300 bytes of a small row), a trade each row once or
 * twice (deflated: rows of one page share most of their bytes).
 */
const EXCHANGE_MIN_SHARE = 0.5
const EXCHANGE_MAX_ROWS_PER_CHILD = 8
const EXCHANGE_MIN_CHILDREN = 16
/**
 * The first page of the other side's rows in a trade, which says who is ahead: if none of its
 * rows changes this replica, this side's rows go first. Small, so a wrong guess costs little.
 */
const PROBE_PAGE_BYTES = 8 * 1024
/**
 * A feed exchange lists at most this share of a partition's rows on each side (and at least
 * FEED_MIN_LIMIT): a row listed costs ~25 bytes however few of the listed rows differ, so past
 * that the digest tree, or a whole-row trade, is the cheaper way.
 */
const FEED_MAX_SHARE = 0.125
const FEED_MIN_LIMIT = 64



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

/** The peer's change feed as its hello told it: its epoch; per partition its position and what it holds of this side's. */
interface RemoteFeed {
  feed: FeedReplica
  epoch: string
  byPid: Map<string, { seq: number; have: number | null }>
}

/** Keys each side may list in a feed exchange for a partition of `rows` rows: past that share, the tree (or a whole-row trade) costs less. */
function feedLimit(rows: number): number {
  return Math.max(FEED_MIN_LIMIT, Math.min(MAX_FEED_KEYS, Math.floor(rows * FEED_MAX_SHARE)))
}

interface PartitionPlan {
  table: string
  partition: string
  local: PartitionRoot | undefined
  remote: PartitionRoot | undefined
}

/** Runs one anti-entropy round as the initiator. Errors of one partition are recorded, not thrown. */
export async function reconcile(local: SyncReplica, ask: Ask, options: ReconcileOptions): Promise<RoundStats> {
  const stats = options.stats ?? newRoundStats()
  // The peer learns of our first page of partitions (for its own bookkeeping); we page all of its.
  const mine = pageOfRoots(local.roots(), null, MAX_ROOTS_PER_FRAME)
  const feed = options.feed === true && local.changesets === undefined ? local.feed : undefined
  // Positions read with the roots (both move at commit): a peer finding a root equal to its own marks the position.
  const helloFeed = feed === undefined ? {} : { feed: { epoch: feed.epoch(), seqs: mine.roots.map((r) => feed.seq(r.table, r.partition)) } }
  const hello = await request(ask, { type: 'hello', carries: local.carries(), roots: mine.roots, next: mine.next, ...helloFeed }, 'hello')
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
  let remoteFeed: RemoteFeed | null = null
  if (feed !== undefined && hello.feed?.have !== undefined) {
    const have = hello.feed.have
    remoteFeed = { feed, epoch: hello.feed.epoch, byPid: new Map(hello.roots.map((r, i) => [partitionId(r.table, r.partition), { seq: hello.feed!.seqs[i]!, have: have[i] ?? null }])) }
  }
  const session = new Session(local, ask, options, stats, hello.carries, remoteRoots, remoteFeed)
  // The catalog first: rows of a table can only be merged once its schema is known here.
  await session.run((table) => table === CATALOG_TABLE)
  await session.run((table) => table !== CATALOG_TABLE)
  return stats
}

class Session {
  private readonly remoteHeld: Set<string>
  private readonly done = new Set<string>()

  constructor(
    private readonly local: SyncReplica,
    private readonly ask: Ask,
    private readonly options: ReconcileOptions,
    private readonly stats: RoundStats,
    private readonly remoteCarries: Carries,
    private readonly remoteRoots: PartitionRoot[],
    private readonly remoteFeed: RemoteFeed | null,
  ) {
    this.remoteHeld = new Set(remoteRoots.map((r) => partitionId(r.table, r.partition)))
  }

  /** The page size to ask for or send now. */
  private readonly pageBytes = (): number => {
    const size = this.options.pageBytes
    return Math.min(typeof size === 'function' ? size() : (size ?? DEFAULT_PAGE_BYTES), FETCH_FRAME_BUDGET)
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
      if (localRoot !== undefined && remoteRoot !== undefined && equalBytes(localRoot, remoteRoot)) {
        await this.markHeld(plan.table, plan.partition, this.remoteFeed?.byPid.get(id)?.seq)
        continue
      }
      this.stats.differing++
      this.options.signal?.throwIfAborted()
      const release = this.options.claim === undefined ? () => {} : this.options.claim(plan.table, plan.partition)
      if (release === null) {
        this.stats.busyElsewhere++
        continue
      }
      if (this.options.claim !== undefined) {
        // Another round may have reconciled it since this one began: look at it as it is now (a
        // partition loaded meanwhile must not be walked again as if it were still empty).
        plan.local = this.local.partitionRoot(plan.table, plan.partition)
        if (plan.local !== undefined && remoteRoot !== undefined && equalBytes(plan.local.root, remoteRoot)) {
          release()
          continue
        }
      }
      try {
        await this.partition(plan)
      } catch (error) {
        if (this.options.signal?.aborted === true) throw error
        if (!(error instanceof ShoalError)) throw error
        if (error.code === BUSY_ELSEWHERE) this.stats.busyElsewhere++
        else this.stats.errors.push(`${plan.table}/${plan.partition}: ${error.message}`)
      } finally {
        release()
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
      else {
        const rows = Math.max(plan.local?.rows ?? 0, plan.remote?.rows ?? 0)
        const remoteRoot = await this.byFeed(table, partition, rows, plan.remote!.root, progress)
        if (remoteRoot !== null) await this.descend(table, partition, rows, remoteRoot, progress)
      }
    } finally {
      progress.finish()
    }
  }

  /** This side holds the peer's state of the partition as of its feed position `seq` (seen as equal roots). */
  private async markHeld(table: string, partition: string, seq: number | undefined): Promise<void> {
    if (this.remoteFeed === null || seq === undefined) return
    await this.remoteFeed.feed.setMark(this.options.from, table, partition, { epoch: this.remoteFeed.epoch, seq })
  }

  /**
   * Reconciles a partition by the change feed: the rows the peer changed since the position this
   * side holds of it, and the rows this side changed since the position it holds of this side,
   * compared by hash and exchanged as at the tree's leaves; then both roots are compared. Returns
   * null when they are equal, else the peer's root to walk the digest tree against (also when
   * the feed cannot tell: no mark yet, another epoch, too many changes).
   */
  private async byFeed(table: string, partition: string, rows: number, remoteRoot: Uint8Array, progress: Progress): Promise<Uint8Array | null> {
    const remote = this.remoteFeed
    const theirs = remote?.byPid.get(partitionId(table, partition))
    if (remote === null || theirs === undefined || theirs.have === null) return remoteRoot
    const { feed } = remote
    const mark = await feed.mark(this.options.from, table, partition)
    if (mark === null || mark.epoch !== remote.epoch) return remoteRoot
    const limit = feedLimit(rows)
    const mine = await feed.changedSince(table, partition, theirs.have, limit)
    if (typeof mine === 'string') return remoteRoot
    const res = await request(this.ask, { type: 'changes', table, partition, epoch: mark.epoch, after: mark.seq, limit, keys: mine.keys }, 'changes')
    if (res.status !== 'ok') return remoteRoot
    if (res.rows.length > limit + mine.keys.length) throw new ProtocolError(`peer listed ${res.rows.length} changed rows; at most ${limit + mine.keys.length} were asked for`)
    const listed = new Map<string, Uint8Array | null>()
    for (const row of res.rows) {
      if (listed.has(row.key)) throw new ProtocolError(`peer listed changed row '${row.key}' twice`)
      listed.set(row.key, row.hash)
    }
    for (const key of mine.keys) if (!listed.has(key)) throw new ProtocolError(`peer left out row '${key}', which it was asked about`)
    const keys = [...listed.keys()]
    const ours = await feed.hashes(table, partition, keys)
    const theirHashes = new Map<string, Uint8Array>()
    const ourHashes = new Map<string, Uint8Array>()
    keys.forEach((key, i) => {
      const t = listed.get(key)
      if (t != null) theirHashes.set(key, t)
      const o = ours[i]
      if (o != null) ourHashes.set(key, o)
    })
    await this.exchange(table, partition, theirHashes, ourHashes, async (asked) => {
      const now = await feed.hashes(table, partition, asked)
      return new Map(asked.flatMap((key, i) => (now[i] == null ? [] : [[key, now[i]!] as const])))
    }, progress)
    // Root and position read together: both move at commit.
    const root = this.local.partitionRoot(table, partition)?.root ?? new Uint8Array(DIGEST_BYTES)
    const settled = await request(this.ask, { type: 'settle', table, partition, root, epoch: feed.epoch(), seq: feed.seq(table, partition) }, 'settle')
    if (!equalBytes(settled.root, root)) {
      this.stats.feedMissed++
      return settled.root
    }
    await feed.setMark(this.options.from, table, partition, { epoch: remote.epoch, seq: settled.seq })
    this.stats.byFeed++
    return null
  }

  private exchangeChangesets(log: ChangesetReplica, table: string, partition: string, progress: Progress): Promise<void> {
    return exchangeChangesets({ ask: this.ask, options: this.options, stats: this.stats, pageBytes: this.pageBytes }, log, table, partition, progress)
  }

  private async descend(table: string, partition: string, rows: number, remoteRoot: Uint8Array, progress: Progress): Promise<void> {
    let frontier = [0]
    let traded = false
    for (let level = 0; level < DIGEST_TREE_DEPTH && frontier.length > 0; level++) {
      const childSpan = TREE_FANOUT ** (DIGEST_TREE_DEPTH - level - 1)
      const differing: Array<{ child: number; oursEmpty: boolean; theirsEmpty: boolean }> = []
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
            if (!equalBytes(theirs, ours)) differing.push({ child: (nodes[i]! << DIGEST_TREE_FANOUT_BITS) | c, oursEmpty: isZero(ours), theirsEmpty: isZero(theirs) })
          }
        }
      }
      if (!traded && mostRowsDiffer(rows, TREE_FANOUT ** (level + 1), differing.length)) {
        // Most rows of these subtrees differ: both sides' whole rows cost less than descending to
        // each one and trading versions and deltas (and merging whole rows is as good as deltas).
        // Theirs first: when this side had nothing they lack (it was only behind), its tree is
        // then theirs and nothing goes back. Unless a first small page of theirs changes nothing
        // here: then this side is the one ahead (the peer was away), its rows go first, and this
        // level's child hashes are compared again, so theirs are fetched only where still needed.
        traded = true
        const span = childSpan * TREE_FANOUT
        const runs = runsOf(frontier.map((node) => [node * span, (node + 1) * span] as const))
        const [from0, to0] = runs[0]!
        const probe = await this.pullPage(table, partition, from0, to0, Math.min(this.pageBytes(), PROBE_PAGE_BYTES), progress)
        if (probe.rows > 0 && probe.changed === 0) {
          for (const [from, to] of runs) await this.pushRange(table, partition, from, to)
          level--
          continue
        }
        if (probe.next !== null) await this.pullRange(table, partition, from0, to0, progress, probe.next)
        for (const [from, to] of runs.slice(1)) await this.pullRange(table, partition, from, to, progress)
        const now = this.local.partitionRoot(table, partition)?.root
        if (now !== undefined && equalBytes(now, remoteRoot)) return
        for (const [from, to] of runs) await this.pushRange(table, partition, from, to)
        return
      }
      const next: number[] = []
      for (const { child, oursEmpty, theirsEmpty } of differing) {
        if (childSpan >= RANGE_MIN_LEAVES && oursEmpty) await this.pullRange(table, partition, child * childSpan, (child + 1) * childSpan, progress)
        else if (childSpan >= RANGE_MIN_LEAVES && theirsEmpty) await this.pushRange(table, partition, child * childSpan, (child + 1) * childSpan)
        else next.push(child)
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
    const ours = new Map(mine.map((r) => [r.key, r.hash]))
    await this.exchange(table, partition, theirs, ours, async (keys) => {
      const asked = new Set(keys)
      const now = await this.local.leafRows(table, partition, [...new Set(keys.map(leafOf))])
      return new Map(now.filter((r) => asked.has(r.key)).map((r) => [r.key, r.hash]))
    }, progress)
  }

  /**
   * Brings rows listed with their hashes on both sides (`theirs`, `ours`: key → truncated row
   * hash, rows absent where a side lacks them) in line: fetches rows only the peer has, pushes rows
   * only this side has, and for rows both hold with different hashes trades deltas against each
   * other's versions. `hashesNow`: this side's hashes of some keys as they are now.
   */
  private async exchange(
    table: string,
    partition: string,
    theirs: ReadonlyMap<string, Uint8Array>,
    ours: ReadonlyMap<string, Uint8Array>,
    hashesNow: (keys: string[]) => Promise<Map<string, Uint8Array>>,
    progress: Progress,
  ): Promise<void> {
    const onlyTheirs: string[] = []
    const onlyOurs: string[] = []
    const both: string[] = []
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
      const versions = await this.local.versions(table, partition, both)
      const items = both.map((key, i) => ({ key, version: versions[i] ?? null }))
      const theirVersions = await this.fetchRows(table, partition, items, progress)
      // Rows that now hash as theirs did need nothing sent back (a Yjs delta is never empty: it
      // always carries the delete set, so "is there a delta" cannot tell).
      const now = await hashesNow([...theirVersions.keys()])
      const back: RowBytes[] = []
      for (const [key, version] of theirVersions) {
        const hash = now.get(key)
        if (hash !== undefined && equalBytes(hash, theirs.get(key)!)) continue
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

  /** One page of the peer's rows in leaves [from, to), applied: how many came, how many changed this replica, where the next page starts. */
  private async pullPage(table: string, partition: string, from: number, to: number, maxBytes: number, progress: Progress): Promise<{ rows: number; changed: number; next: RangeCursor | null }> {
    const res = await request(this.ask, { type: 'range', table, partition, from, to, after: null, maxBytes }, 'range')
    if (res.next !== null && (res.next.leaf < from || res.next.leaf >= to)) throw new ProtocolError('peer sent a range cursor that does not move forward inside the range')
    const changed = await this.applyHere(table, partition, res.rows, progress)
    return { rows: res.rows.length, changed, next: res.next }
  }

  /** Walks the peer's rows in leaves [from, to) page by page (after `start`), applying each page while the next one is on its way. */
  private async pullRange(table: string, partition: string, from: number, to: number, progress: Progress, start: RangeCursor | null = null): Promise<void> {
    let after: RangeCursor | null = start
    let page = request(this.ask, { type: 'range', table, partition, from, to, after, maxBytes: this.pageBytes() }, 'range')
    for (;;) {
      const res = await page
      if (res.next !== null) {
        if (res.next.leaf < from || res.next.leaf >= to || (after !== null && !cursorAfter(res.next, after))) throw new ProtocolError('peer sent a range cursor that does not move forward inside the range')
        after = res.next
        page = request(this.ask, { type: 'range', table, partition, from, to, after, maxBytes: this.pageBytes() }, 'range')
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
      const page = await this.local.range(table, partition, from, to, after, this.pageBytes())
      await this.push(table, partition, page.rows)
      if (page.next === null) return
      after = page.next
      this.options.signal?.throwIfAborted()
    }
  }

  private async push(table: string, partition: string, rows: readonly RowBytes[]): Promise<void> {
    for (const batch of byBytes(rows, this.pageBytes())) {
      const res = await request(this.ask, { type: 'push', table, partition, rows: batch }, 'push')
      this.stats.rowsSent += batch.length
      this.stats.changedThere += res.applied
      this.stats.refused += res.refused
    }
  }

  /** Applies rows from the peer; returns how many changed this replica. */
  private async applyHere(table: string, partition: string, rows: readonly RowBytes[], progress: Progress): Promise<number> {
    if (rows.length === 0) return 0
    const result = await this.local.apply(table, partition, rows, this.options.from)
    this.stats.rowsReceived += rows.length
    this.stats.changedHere += result.changed
    this.stats.refused += result.refused
    progress.add(rows.length)
    return result.changed
  }
}

/**
 * Whether most of a partition's `rows` differ, judged at one level of the tree: it has `children`
 * nodes, `differing` of them differ. With r rows per node, about children × (1 − e^−r) hold rows
 * (Poisson), and a node differs when any of its rows does: with a share f of rows differing, a
 * share 1 − (1 − f)^r of filled nodes does; f is estimated back from that. Only where nodes hold
 * few rows (one differing row in a big node says little) and enough of them differ to judge.
 */
export function mostRowsDiffer(rows: number, children: number, differing: number): boolean {
  const perChild = rows / children
  if (perChild > EXCHANGE_MAX_ROWS_PER_CHILD || differing < EXCHANGE_MIN_CHILDREN) return false
  const filled = children * (1 - Math.exp(-perChild))
  const childShare = Math.min(1, differing / filled)
  const rowShare = 1 - (1 - childShare) ** (1 / Math.max(1, perChild))
  return rowShare >= EXCHANGE_MIN_SHARE
}

/** Half-open ranges, merged where one ends where the next begins (input in order). */
function runsOf(ranges: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (const [from, to] of ranges) {
    const last = out[out.length - 1]
    if (last !== undefined && last[1] === from) last[1] = to
    else out.push([from, to])
  }
  return out
}

function cursorAfter(a: RangeCursor, b: RangeCursor): boolean {
  return a.leaf > b.leaf || (a.leaf === b.leaf && a.key > b.key)
}


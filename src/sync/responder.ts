import { ShoalError } from '../errors.js'
import { isCarried } from './carries.js'
import { pageOfRoots, type ChangesetReplica, type FeedReplica, type SyncReplica } from './replica.js'
import { BUSY_ELSEWHERE, FETCH_FRAME_BUDGET } from './round-io.js'
import { MAX_CHANGESETS_PER_FRAME, MAX_CLOCK_AUTHORS, MAX_CLOCK_RANGES, MAX_FEED_KEYS, MAX_ROOTS_PER_FRAME, type AuthorRanges, type HelloFeed, type PartitionRoot, type SyncRequest, type SyncResponse } from './sync-messages.js'
import { DIGEST_BYTES } from '../constants.js'
import { equalBytes } from '../table/hash.js'
import { partitionId } from '../table/ids.js'
import { ProtocolError } from '../errors.js'

/**
 * Answers one request from a peer, from this replica. Stateless. Never throws: problems become
 * error responses, so a misbehaving peer gets told and this peer goes on. `claim`: asked before
 * rows or changesets pushed to this peer are taken; false when another round is loading that
 * partition here now (answered BUSY_ELSEWHERE: the peer leaves it for a later round).
 */
export async function answer(local: SyncReplica, req: SyncRequest, from: string, claim?: (table: string, partition: string) => boolean): Promise<SyncResponse> {
  try {
    const log = local.changesets
    if (log !== undefined) {
      const refusal = trustedRefusal(log, req, from)
      if (refusal !== null) return refusal
    }
    // In a private mesh a peer learns only of partitions it may read.
    const roots = (): PartitionRoot[] => (log === undefined ? local.roots() : local.roots().filter((r) => log.readable(from, r.table, r.partition)))
    if ((req.type === 'push' || req.type === 'offer') && claim !== undefined && !claim(req.table, req.partition)) {
      return { type: 'error', code: BUSY_ELSEWHERE, message: `another round is bringing partition '${req.partition}' of table '${req.table}' here now; try it in a later round` }
    }
    switch (req.type) {
      case 'hello': {
        const all = roots()
        const page = pageOfRoots(all, null, MAX_ROOTS_PER_FRAME)
        const feed = local.feed !== undefined && log === undefined && req.feed !== undefined ? await answerFeed(local.feed, req, all, page.roots, from) : undefined
        return { type: 'hello', carries: local.carries(), ...page, ...(feed === undefined ? {} : { feed }) }
      }
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
      case 'changes':
      case 'settle':
        if (local.feed === undefined || log !== undefined) return { type: 'error', code: 'NO_FEED', message: 'this peer keeps no change feed: reconcile by the digest tree' }
        return await answerFromFeed(local, local.feed, req, from)
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
    case 'changes':
    case 'settle':
      return { type: 'error', code: 'FORBIDDEN', message: `'${req.type}' is refused in a private mesh: changes travel as signed changesets (clock, changesets, offer)` }
  }
}

/**
 * hello's change feed: where a partition's roots are equal, this replica holds the asker's state
 * as of the position it sent (marked); the answer gives this side's positions and what it holds of
 * the asker's (for the asker to list what it changed since).
 */
async function answerFeed(feed: FeedReplica, req: Extract<SyncRequest, { type: 'hello' }>, all: readonly PartitionRoot[], mine: readonly PartitionRoot[], from: string): Promise<HelloFeed> {
  const theirs = req.feed!
  // Positions read with the roots just taken (no await between: both move at commit), or the
  // asker would mark a position past the root it saw.
  const seqs = mine.map((r) => feed.seq(r.table, r.partition))
  const now = new Map(all.map((r) => [partitionId(r.table, r.partition), r.root]))
  for (const [i, r] of req.roots.entries()) {
    const root = now.get(partitionId(r.table, r.partition))
    if (root !== undefined && equalBytes(root, r.root)) await feed.setMark(from, r.table, r.partition, { epoch: theirs.epoch, seq: theirs.seqs[i]! })
  }
  const have = await Promise.all(
    mine.map(async (r) => {
      const mark = await feed.mark(from, r.table, r.partition)
      return mark !== null && mark.epoch === theirs.epoch ? mark.seq : null
    }),
  )
  return { epoch: feed.epoch(), seqs, have }
}

async function answerFromFeed(local: SyncReplica, feed: FeedReplica, req: Extract<SyncRequest, { type: 'changes' | 'settle' }>, from: string): Promise<SyncResponse> {
  if (req.type === 'settle') {
    // Root and position read together (both move at commit), so the mark below is true.
    const root = local.partitionRoot(req.table, req.partition)?.root ?? new Uint8Array(DIGEST_BYTES)
    const seq = feed.seq(req.table, req.partition)
    if (equalBytes(root, req.root)) await feed.setMark(from, req.table, req.partition, { epoch: req.epoch, seq: req.seq })
    return { type: 'settle', root, seq }
  }
  if (req.epoch !== feed.epoch()) return { type: 'changes', status: 'unknown', seq: 0, rows: [] }
  const changed = await feed.changedSince(req.table, req.partition, req.after, Math.min(req.limit, MAX_FEED_KEYS))
  if (typeof changed === 'string') return { type: 'changes', status: changed, seq: 0, rows: [] }
  const keys = [...new Set([...changed.keys, ...req.keys])]
  const hashes = await feed.hashes(req.table, req.partition, keys)
  return { type: 'changes', status: 'ok', seq: changed.seq, rows: keys.map((key, i) => ({ key, hash: hashes[i] ?? null })) }
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
      // An author this peer has not met yet is learnt from the admission that comes along (checked
      // like any other: signed by the mesh authority, not expired, not revoked); a bad one only
      // leaves that author's changesets refused.
      if (req.admission !== null) await log.learn(req.admission).catch(() => undefined)
      const result = await log.apply(req.table, req.partition, req.changesets, from)
      return { type: 'offer', applied: result.changed, refused: result.refused }
    }
  }
}

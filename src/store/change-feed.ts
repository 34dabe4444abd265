import { FEED_MARKED_PEERS, FEED_MARKS_KEPT_PEERS, FEED_MAX_KEYS, FEED_MIN_KEYS } from '../constants.js'
import { ID_SEP } from '../table/ids.js'
import { prefixEnd, SEP } from './layout.js'

/*
 * The change feed: which rows of each partition changed here, in commit order, so that a peer
 * known to hold this store's state of a partition as of feed position S can be told just the rows
 * changed since (anti-entropy by versions: proportional to the change, not to the digest tree).
 *
 *   feed  table␀partition␀position(14 hex digits) → the keys one commit changed there, NUL-joined
 *   meta  feed␀table␀partition → "position floor logged": the last position; the position below the
 *                                 oldest entry kept; how many keys the kept entries list
 *   meta  feedEpoch → random id of this store's feed: positions only compare within one epoch
 *   meta  mark␀peer␀table␀partition → "epoch position": the peer's feed position whose state this
 *                                      store was seen to hold (equal digest roots)
 *   meta  markedPeer␀peer → when a mark of the peer was last set (ms, strictly increasing): the
 *                           marks of the FEED_MARKS_KEPT_PEERS most recent peers are kept
 * Bounded: once a partition's entries list a quarter more keys than it has rows (counted as at
 * least FEED_MIN_KEYS, at most FEED_MAX_KEYS), the oldest go until they list no more than that,
 * and the floor rises; a peer asking from below the floor is
 * told to use the digest tree instead.
 */

const POSITION_DIGITS = 14
export const FEED_PREFIX = `feed${SEP}`
export const FEED_EPOCH = 'feedEpoch'
export const MARK_PREFIX = `mark${SEP}`
export const MARKED_PEER_PREFIX = `markedPeer${SEP}`
/** A peer still marking is refreshed in markedPeer␀ this often, though its marks do not change. */
const MARKED_PEER_REFRESH_MS = 60 * 60 * 1000
/** A feed epoch: 8 random bytes in hex. */
export const FEED_EPOCH_PATTERN = /^[0-9a-f]{16}$/
const NUL = 0

export interface FeedPosition {
  /** Position of the last commit that changed the partition. */
  seq: number
  /** Entries after this position are kept. */
  floor: number
  /** Keys listed by the kept entries. */
  logged: number
}

/** A peer's feed position whose state this store holds. */
export interface FeedMark {
  epoch: string
  seq: number
}

export type FeedAnswer = { seq: number; keys: string[] } | 'unknown' | 'too-many'

type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }

interface FeedLevel {
  iterator(options: { gt: string; lte: string }): AsyncIterable<[string, Uint8Array]>
}

interface MetaLevel {
  get(key: string): Promise<string | undefined>
  put(key: string, value: string): Promise<void>
  del(key: string): Promise<void>
  batch(ops: Array<{ type: 'put'; key: string; value: string }>): Promise<void>
  clear(range: { gte: string; lt: string }): Promise<void>
  iterator(options: { gte: string; lt: string }): AsyncIterable<[string, string]>
}

const utf8 = new TextEncoder()
const text = new TextDecoder()

export function feedKey(pid: string, seq: number): string {
  return `${pid}${SEP}${seq.toString(16).padStart(POSITION_DIGITS, '0')}`
}

function countKeys(entry: Uint8Array): number {
  let n = 1
  for (const b of entry) if (b === NUL) n++
  return n
}

export class ChangeFeed {
  private readonly positions = new Map<string, FeedPosition>()
  /** peer → (pid → mark), for the peers of recent rounds (loaded from meta on first use). */
  private readonly marks = new Map<string, Map<string, FeedMark>>()
  /** Every peer with marks on disk → when one was last set (ms), least recent first. */
  private readonly markedPeers = new Map<string, number>()
  /** The last time given a mark: strictly increasing, so marks set in one millisecond keep their order across a reopen. */
  private lastMarkedAt = 0
  private epochId = ''

  /** Reads the feed's positions and epoch; `onDamage` hears of a damaged position (the feed then starts a new epoch). */
  async load(meta: MetaLevel, onDamage: (message: string) => void = () => undefined): Promise<void> {
    let damaged = false
    for await (const [key, value] of meta.iterator({ gte: FEED_PREFIX, lt: prefixEnd(FEED_PREFIX) })) {
      const [seq, floor, logged] = value.split(' ').map(Number)
      if (![seq, floor, logged].every((n) => Number.isSafeInteger(n) && n! >= 0) || floor! > seq!) {
        // Only a shortcut is lost: that partition's feed starts over, and a new epoch voids every
        // peer's mark of this store, so they reconcile by the digest tree until marked again.
        onDamage(`the change feed's position of partition ${JSON.stringify(key.slice(FEED_PREFIX.length).split(ID_SEP).join('/'))} was damaged (${JSON.stringify(value.slice(0, 80))}); the feed starts over (peers reconcile it by the digest tree until their next round)`)
        damaged = true
        continue
      }
      this.positions.set(key.slice(FEED_PREFIX.length), { seq: seq!, floor: floor!, logged: logged! })
    }
    const marked: Array<[string, number]> = []
    for await (const [key, value] of meta.iterator({ gte: MARKED_PEER_PREFIX, lt: prefixEnd(MARKED_PEER_PREFIX) })) {
      const at = Number(value)
      // A damaged time only makes that peer's marks the first to go.
      marked.push([key.slice(MARKED_PEER_PREFIX.length), Number.isFinite(at) ? at : 0])
    }
    for (const [peer, at] of marked.sort((x, y) => x[1] - y[1])) {
      this.markedPeers.set(peer, at)
      this.lastMarkedAt = Math.max(this.lastMarkedAt, at)
    }
    const epoch = await meta.get(FEED_EPOCH)
    if (epoch !== undefined && FEED_EPOCH_PATTERN.test(epoch) && !damaged) this.epochId = epoch
    else {
      this.epochId = [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, '0')).join('')
      await meta.put(FEED_EPOCH, this.epochId)
    }
  }

  /** This store's feed id: a peer's mark of another epoch (a data folder started over) says nothing. */
  epoch(): string {
    return this.epochId
  }

  /** The partition's last feed position (0: nothing logged yet). */
  seq(pid: string): number {
    return this.positions.get(pid)?.seq ?? 0
  }

  /**
   * The feed entries of a commit changing `changed` (pid → keys), added to `ops`, with the oldest
   * entries of a partition over its bound removed (their sizes read back; `rows`: a partition's
   * row count). Returns the positions to take once the commit is durable.
   */
  async append(feed: FeedLevel, prefix: { feed: string; meta: string }, changed: ReadonlyMap<string, readonly string[]>, rows: (pid: string) => number, ops: BatchOp[]): Promise<Map<string, FeedPosition>> {
    const next = new Map<string, FeedPosition>()
    for (const [pid, keys] of changed) {
      if (keys.length === 0) continue
      const at = { ...(this.positions.get(pid) ?? { seq: 0, floor: 0, logged: 0 }) }
      at.seq++
      at.logged += keys.length
      ops.push({ type: 'put', key: prefix.feed + feedKey(pid, at.seq), value: utf8.encode(keys.join('\u0000')) })
      const bound = Math.min(FEED_MAX_KEYS, Math.max(FEED_MIN_KEYS, rows(pid)))
      // Trimmed in one read once a quarter over the bound, back down to it: a partition taking
      // one-row commits does not pay a LevelDB read (a thread-pool hop) on every commit.
      if (at.logged > bound + bound / 4) {
        for await (const [key, entry] of feed.iterator({ gt: feedKey(pid, at.floor), lte: feedKey(pid, at.seq - 1) })) {
          if (at.logged <= bound) break
          at.floor = parseInt(key.slice(key.lastIndexOf(SEP) + 1), 16)
          at.logged -= countKeys(entry)
          ops.push({ type: 'del', key: prefix.feed + key })
        }
      }
      ops.push({ type: 'put', key: prefix.meta + FEED_PREFIX + pid, value: utf8.encode(`${at.seq} ${at.floor} ${at.logged}`) })
      next.set(pid, at)
    }
    return next
  }

  committed(next: ReadonlyMap<string, FeedPosition>): void {
    for (const [pid, at] of next) this.positions.set(pid, at)
  }

  /**
   * The keys changed in a partition after position `after` (each once), and the position they
   * reach; 'unknown' when the feed no longer (or never) reached back that far, 'too-many' when
   * more than `limit` keys changed.
   */
  async since(feed: FeedLevel, pid: string, after: number, limit: number): Promise<FeedAnswer> {
    const at = this.positions.get(pid) ?? { seq: 0, floor: 0, logged: 0 }
    if (after < at.floor || after > at.seq) return 'unknown'
    const keys = new Set<string>()
    let expect = after + 1
    for await (const [key, entry] of feed.iterator({ gt: feedKey(pid, after), lte: feedKey(pid, at.seq) })) {
      // Entries trimmed meanwhile leave a gap: the answer would miss rows.
      if (parseInt(key.slice(key.lastIndexOf(SEP) + 1), 16) !== expect++) return 'unknown'
      for (const k of text.decode(entry).split('\u0000')) keys.add(k)
      if (keys.size > limit) return 'too-many'
    }
    if (expect !== at.seq + 1) return 'unknown'
    return { seq: at.seq, keys: [...keys] }
  }

  /** What this store was seen to hold of `peer`'s partition, or null. */
  async mark(meta: MetaLevel, peer: string, pid: string): Promise<FeedMark | null> {
    return (await this.peerMarks(meta, peer)).get(pid) ?? null
  }

  async setMark(meta: MetaLevel, peer: string, pid: string, mark: FeedMark): Promise<void> {
    const marks = await this.peerMarks(meta, peer)
    const current = marks.get(pid)
    const now = Math.max(Date.now(), this.lastMarkedAt + 1)
    const last = this.markedPeers.get(peer)
    const unchanged = current !== undefined && current.epoch === mark.epoch && current.seq === mark.seq
    if (unchanged && last !== undefined && now - last < MARKED_PEER_REFRESH_MS) return
    marks.set(pid, mark)
    this.lastMarkedAt = now
    this.markedPeers.delete(peer)
    this.markedPeers.set(peer, now)
    await meta.batch([
      { type: 'put', key: MARK_PREFIX + peer + SEP + pid, value: `${mark.epoch} ${mark.seq}` },
      { type: 'put', key: MARKED_PEER_PREFIX + peer, value: String(now) },
    ])
    if (last === undefined) await this.keepMarksBounded(meta)
  }

  /** Drops the marks of the least recently marked peers beyond FEED_MARKS_KEPT_PEERS. */
  private async keepMarksBounded(meta: MetaLevel): Promise<void> {
    while (this.markedPeers.size > FEED_MARKS_KEPT_PEERS) {
      const peer = this.markedPeers.keys().next().value!
      this.markedPeers.delete(peer)
      this.marks.delete(peer)
      const prefix = MARK_PREFIX + peer + SEP
      await meta.clear({ gte: prefix, lt: prefixEnd(prefix) })
      // Last: a crash before it leaves the peer listed, to be dropped again after the next open.
      await meta.del(MARKED_PEER_PREFIX + peer)
    }
  }

  private async peerMarks(meta: MetaLevel, peer: string): Promise<Map<string, FeedMark>> {
    let marks = this.marks.get(peer)
    if (marks !== undefined) {
      // Most recently used last: the first is the one to forget.
      this.marks.delete(peer)
      this.marks.set(peer, marks)
      return marks
    }
    marks = new Map()
    const prefix = MARK_PREFIX + peer + SEP
    for await (const [key, value] of meta.iterator({ gte: prefix, lt: prefixEnd(prefix) })) {
      const [epoch, seq] = value.split(' ')
      const n = Number(seq)
      // A damaged mark is only a lost shortcut: the digest tree still reconciles that partition.
      if (epoch !== undefined && epoch !== '' && Number.isSafeInteger(n) && n >= 0) marks.set(key.slice(prefix.length), { epoch, seq: n })
    }
    if (this.marks.size >= FEED_MARKED_PEERS) this.marks.delete(this.marks.keys().next().value!)
    this.marks.set(peer, marks)
    return marks
  }
}

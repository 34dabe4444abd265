import { parsePartitionId, partitionId } from '../table/ids.js'

/*
 * When to run anti-entropy rounds, and with whom: the policy, apart from streams and stores, so
 * the running peer and the simulator (in virtual time) run the same decisions. Pure: time,
 * randomness and timers are injected.
 *
 * A round runs with a peer
 *   - when a connection to it opens: at once on the side with the smaller id, after a jittered
 *     delay on the other (so both sides rarely start at once), unless a round that started after
 *     the connection opened already completed;
 *   - when it announces a partition this peer carries, once gossip on it has been quiet for
 *     `learnedQuietMs` (so the round fetches what gossip missed instead of racing it), waiting at
 *     most `learnedMaxWaitMs`;
 *   - periodically: every `intervalMs` (jittered to 50–150 %) with `peersPerRound` peers chosen
 *     uniformly at random among those not busy and that did not run a complete round with this
 *     one within the current interval; while the rounds this side starts find every
 *     partition in sync, the interval doubles, up to `maxIntervalMs` (a mesh in sync sends next to
 *     nothing), and a round that finds a difference brings it back at once;
 *   - again, right after a running round ends, when one was asked for meanwhile.
 * At most one round per peer runs at a time, either side. When both sides start one at once, the
 * peer with the smaller id declines the other's (one round covers both directions).
 */

export interface SchedulerClock {
  /** Milliseconds (any epoch, monotone enough for intervals). */
  now(): number
  /** Runs `fn` after `ms`; returns a cancel function. */
  schedule(fn: () => void, ms: number): () => void
}

export type RoundOutcome = 'ok' | 'failed' | 'declined'

export interface RoundSchedulerInit {
  clock: SchedulerClock
  /** Uniform in [0, 1). */
  random: () => number
  /** Mean time between periodic rounds; 0 turns them off. */
  intervalMs: number
  /** Longest mean time between periodic rounds while they find nothing to repair (default 8 × intervalMs). */
  maxIntervalMs?: number
  peersPerRound: number
  /** Upper bound of the jittered wait before a round asked for by a connection. */
  connectDelayMs: number
  /**
   * This peer's id, as `peer` arguments name peers. Given, the side of a new connection whose id
   * is the smaller (the one whose round wins when both start at once) starts its round at once,
   * and only the other side waits the jittered delay (it finds the round running, or done).
   */
  self?: string
  learnedQuietMs: number
  learnedMaxWaitMs: number
  /** Peers a periodic round may choose from (connected, speaking the protocol). */
  candidates: () => Promise<string[]> | string[]
  /** Starts a round with `peer` as the initiator; the scheduler is told its end by `outboundEnded`. */
  run: (peer: string) => void
  /** Milliseconds since gossip last brought deltas for a partition (Infinity if never). */
  gossipIdleMs?: (table: string, partition: string) => number
}

export const DEFAULT_INTERVAL_MS = 30_000
export const DEFAULT_PEERS_PER_ROUND = 3
export const DEFAULT_CONNECT_DELAY_MS = 500
/** See RoundSchedulerInit.learnedQuietMs. */
export const LEARNED_QUIET_MS = 1_000
/** A round asked for by an announcement waits for quiet gossip at most this long. */
export const LEARNED_MAX_WAIT_MS = 10_000

/** Fisher–Yates: every order equally likely (sorting by a random comparator is not). */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = out[i]!
    out[i] = out[j]!
    out[j] = t
  }
  return out
}

export class RoundScheduler {
  /** Rounds running with each peer, either side (a peer may be initiator and responder at once). */
  private readonly busy = new Map<string, number>()
  /** Peers this side runs a round with as the initiator. */
  private readonly initiating = new Set<string>()
  /** Peers to reconcile with again as soon as the round running with them ends. */
  private readonly again = new Set<string>()
  /** When the last complete round with each peer started (initiated here without errors, or served until the initiator closed). */
  private readonly lastGoodRound = new Map<string, number>()
  /** When the last complete round each peer started with this one began. */
  private readonly lastInboundRound = new Map<string, number>()
  /** Peers that connected while a round with them was running: connection open time, decided when it ends. */
  private readonly connectedDuringRound = new Map<string, number>()
  /** Peers with an announcement-triggered round waiting for quiet gossip: the partitions it waits on, and since when. */
  private readonly learned = new Map<string, { partitions: Set<string>; since: number }>()
  private readonly timers = new Set<() => void>()
  private cancelPeriodic: (() => void) | undefined
  /** The periodic interval's multiplier: doubles while rounds find everything in sync. */
  private backoff = 1
  /** When the interval last doubled. */
  private backedOffAt = -Infinity
  private running = false

  constructor(private readonly init: RoundSchedulerInit) {}

  start(): void {
    this.running = true
    this.schedulePeriodic()
  }

  stop(): void {
    this.running = false
    this.cancelPeriodic?.()
    for (const cancel of this.timers) cancel()
    this.timers.clear()
    this.learned.clear()
    this.connectedDuringRound.clear()
  }

  isBusy(peer: string): boolean {
    return this.busy.has(peer)
  }

  /** A connection to `peer` opened at `openedAt` (undefined: unknown). */
  connected(peer: string, openedAt: number | undefined): void {
    const first = this.init.self !== undefined && this.init.self < peer
    this.after(() => this.catchUp(peer, openedAt), first ? 0 : this.connectDelay())
  }

  /**
   * `peer` said (by gossip) that it holds a partition this peer carries: reconcile with it once
   * the gossip that follows the announcement has settled. One waiting round per peer covers
   * every partition it announces meanwhile.
   */
  learnedPartition(peer: string, table: string, partition: string): void {
    if (!this.running) return
    const now = this.init.clock.now()
    const waiting = this.learned.get(peer)
    if (waiting !== undefined) {
      waiting.partitions.add(partitionId(table, partition))
      waiting.since = now
      return
    }
    this.learned.set(peer, { partitions: new Set([partitionId(table, partition)]), since: now })
    const deadline = now + this.init.learnedMaxWaitMs
    const check = (): void => {
      const idle = this.learnedIdleMs(peer)
      const at = this.init.clock.now()
      if (idle >= this.init.learnedQuietMs || at >= deadline) {
        this.learned.delete(peer)
        this.request(peer)
      } else {
        this.after(check, Math.min(this.init.learnedQuietMs - idle, deadline - at))
      }
    }
    this.after(check, this.init.learnedQuietMs + this.connectDelay())
  }

  /**
   * Rows from `from` changed this replica in a round: gossip carries only a peer's own writes,
   * so the other connected peers (`peers`) may lack them too. Reconcile with each shortly
   * (pages of one round arrive close together), unless a good round with it starts after the
   * change anyway. In a star (browser tabs joined through one Node peer) this is what carries a
   * tab's offline writes on to the other tabs; rounds that find nothing new spread nothing.
   */
  repaired(from: string, peers: readonly string[]): void {
    if (!this.running) return
    const at = this.init.clock.now()
    this.after(() => {
      for (const peer of peers) {
        if (peer === from || (this.lastGoodRound.get(peer) ?? -Infinity) >= at) continue
        this.request(peer)
      }
    }, this.connectDelay())
  }

  /** Asks for a round with `peer` now; if one is running, another follows it. */
  request(peer: string): void {
    if (!this.running) return
    if (this.busy.has(peer)) {
      // The running round may have compared roots before the change that asked for this one.
      this.again.add(peer)
      return
    }
    this.init.run(peer)
  }

  /** An outbound round is about to start; false (and one is queued) if a round with that peer runs. */
  outboundStarting(peer: string): boolean {
    if (!this.running) return false
    if (this.busy.has(peer)) {
      this.again.add(peer)
      return false
    }
    this.acquire(peer)
    this.initiating.add(peer)
    return true
  }

  /** `inSync`: the round found every shared partition equal (undefined: not known; the interval stays). */
  outboundEnded(peer: string, startedAt: number, outcome: RoundOutcome, inSync?: boolean): void {
    this.initiating.delete(peer)
    if (outcome === 'ok') this.completed(peer, startedAt)
    if (outcome === 'ok' && inSync === true) {
      // At most one doubling per interval: the several rounds of one periodic tick count once.
      const now = this.init.clock.now()
      if (now - this.backedOffAt >= this.periodicIntervalMs() / 2) {
        const max = (this.init.maxIntervalMs ?? this.init.intervalMs * 8) / Math.max(1, this.init.intervalMs)
        this.backoff = Math.min(this.backoff * 2, Math.max(1, max))
        this.backedOffAt = now
      }
    } else if (inSync === false && this.backoff > 1) {
      // Something needed repair: come back to the normal pace now, not after the long wait.
      this.backoff = 1
      this.cancelPeriodic?.()
      this.schedulePeriodic()
    }
    this.release(peer)
  }

  /** The mean time between periodic rounds now (intervalMs, more while rounds find nothing). */
  periodicIntervalMs(): number {
    return this.init.intervalMs * this.backoff
  }

  /**
   * An inbound round's first request arrived. True if this side should decline it: a round with
   * that peer runs from here too (both started at once), and this side's id is the smaller.
   */
  shouldDecline(peer: string, selfId: string): boolean {
    return this.initiating.has(peer) && selfId < peer
  }

  inboundStarted(peer: string): void {
    this.acquire(peer)
  }

  /** `completed`: the initiator closed the stream after a full round. */
  inboundEnded(peer: string, startedAt: number, completed: boolean): void {
    if (completed) {
      this.completed(peer, startedAt)
      this.lastInboundRound.set(peer, Math.max(startedAt, this.lastInboundRound.get(peer) ?? -Infinity))
    }
    this.release(peer)
  }

  private completed(peer: string, startedAt: number): void {
    this.lastGoodRound.set(peer, Math.max(startedAt, this.lastGoodRound.get(peer) ?? 0))
  }

  private acquire(peer: string): void {
    this.busy.set(peer, (this.busy.get(peer) ?? 0) + 1)
  }

  private release(peer: string): void {
    const left = (this.busy.get(peer) ?? 1) - 1
    if (left > 0) {
      this.busy.set(peer, left)
      return
    }
    this.busy.delete(peer)
    const opened = this.connectedDuringRound.get(peer)
    this.connectedDuringRound.delete(peer)
    if (this.again.delete(peer)) this.after(() => this.request(peer), this.connectDelay())
    else if (opened !== undefined) this.after(() => this.catchUp(peer, opened), this.connectDelay())
  }

  /**
   * The round a new connection asks for. Identify also runs again on a live connection when the
   * peer's addresses or protocols change, and both peers ask at once: a round that started after
   * the connection opened, from either side, already caught up with everything from before it
   * (gossip carries what came after), so another one would only repeat it.
   */
  private catchUp(peer: string, opened: number | undefined): void {
    if (opened !== undefined) {
      if ((this.lastGoodRound.get(peer) ?? -Infinity) >= opened) return
      if (this.busy.has(peer)) {
        this.connectedDuringRound.set(peer, Math.min(opened, this.connectedDuringRound.get(peer) ?? Infinity))
        return
      }
    }
    this.request(peer)
  }

  /** How long since the last announcement from `peer`, or gossip on the partitions it announced. */
  private learnedIdleMs(peer: string): number {
    const waiting = this.learned.get(peer)
    if (waiting === undefined) return Infinity
    let idle = this.init.clock.now() - waiting.since
    const idleMs = this.init.gossipIdleMs
    if (idleMs !== undefined) {
      for (const id of waiting.partitions) {
        const { table, partition } = parsePartitionId(id)
        idle = Math.min(idle, idleMs(table, partition))
      }
    }
    return idle
  }

  private schedulePeriodic(): void {
    if (this.init.intervalMs <= 0 || !this.running) return
    this.cancelPeriodic = this.init.clock.schedule(() => {
      void this.periodicRound()
      this.schedulePeriodic()
    }, this.periodicIntervalMs() * (0.5 + this.init.random()))
  }

  /**
   * Skips peers busy with a round, and peers that ran a complete round with this one within the
   * current interval: a round repairs both directions, so two peers that each keep their own
   * periodic timer would otherwise reconcile twice as often as either asks (a pair in sync at the
   * 30-s interval: 4 rounds a minute, 2 with the skip). This side's own rounds do not count, so
   * its pace and back-off stay its own.
   */
  private async periodicRound(): Promise<void> {
    const now = this.init.clock.now()
    const recently = now - this.periodicIntervalMs()
    const candidates = (await this.init.candidates()).filter((p) => !this.busy.has(p) && (this.lastInboundRound.get(p) ?? -Infinity) < recently)
    for (const peer of shuffle(candidates, this.init.random).slice(0, this.init.peersPerRound)) this.request(peer)
  }

  private connectDelay(): number {
    return this.init.random() * this.init.connectDelayMs
  }

  private after(fn: () => void, ms: number): void {
    if (!this.running) return
    const cancel = this.init.clock.schedule(() => {
      this.timers.delete(cancel)
      fn()
    }, ms)
    this.timers.add(cancel)
  }
}

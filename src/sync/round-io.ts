import { ProtocolError, ShoalError } from '../errors.js'
import { MAX_FRAME_BYTES, type SyncRequest, type SyncResponse } from './sync-messages.js'

/*
 * What both sides of a round share: how the initiator asks (one request, one response), the
 * budget an answer must fit, and progress reporting for loads.
 */

export type Ask = (request: SyncRequest) => Promise<SyncResponse>

export interface LoadProgressEvent {
  table: string
  partition: string
  received: number
  expected: number
  done: boolean
}

/** What an answer may hold, leaving room for the envelope under MAX_FRAME_BYTES. */
export const FETCH_FRAME_BUDGET = MAX_FRAME_BYTES - 32 * 1024

class SyncRefusedError extends ShoalError {
  constructor(code: string, message: string) {
    super(code, message)
  }
}


/** Asks and returns the answer of the expected type; a refusal or another type throws. */
export async function request<T extends SyncResponse['type']>(ask: Ask, req: SyncRequest, expect: T): Promise<Extract<SyncResponse, { type: T }>> {
  const res = await ask(req)
  if (res.type === 'error') throw new SyncRefusedError(res.code, `peer refused '${req.type}': ${res.message} (${res.code})`)
  if (res.type !== expect) throw new ProtocolError(`peer answered '${req.type}' with '${res.type}'`)
  return res as Extract<SyncResponse, { type: T }>
}

/** Rows received for one partition in a round, reported as they arrive. */
export class Progress {
  private received = 0

  constructor(
    private readonly table: string,
    private readonly partition: string,
    private readonly expected: number,
    private readonly report: ((event: LoadProgressEvent) => void) | undefined,
  ) {}

  add(rows: number): void {
    this.received += rows
    this.report?.({ table: this.table, partition: this.partition, received: this.received, expected: Math.max(this.expected, this.received), done: false })
  }

  finish(): void {
    if (this.received > 0) this.report?.({ table: this.table, partition: this.partition, received: this.received, expected: Math.max(this.expected, this.received), done: true })
  }
}

export interface ReconcileOptions {
  /** The remote peer's id: the origin recorded on rows merged from it. */
  from: string
  /**
   * Target size of range pages and push batches (default 256 KiB); a function is asked before
   * each page (the peer service sizes pages to the link's measured throughput: sync/link-meter.ts).
   */
  pageBytes?: number | (() => number)
  /** Rows received for one partition, as they arrive (for progress bars). */
  onProgress?: (event: LoadProgressEvent) => void
  signal?: AbortSignal
  /**
   * The round's figures, kept up to date as it goes (newRoundStats()): a caller holding them sees
   * what a round that then fails has already done (its pages are applied, durable, as they come).
   */
  stats?: RoundStats
  /**
   * Asked before a differing partition is reconciled; null: another round is at it now (with
   * another peer), so this round leaves it alone and a later one comes back to it. Otherwise the
   * function that ends the claim. A peer missing rows thus loads each from one source at a time.
   */
  claim?: (table: string, partition: string) => (() => void) | null
  /** The peer speaks the change feed (protocol 1.2.0): partitions are reconciled by what changed since the last round where it can tell. */
  feed?: boolean
}

/** The answer to a push or offer for a partition another round is bringing to the peer now. */
export const BUSY_ELSEWHERE = 'BUSY_ELSEWHERE'

export function newRoundStats(): RoundStats {
  return { shared: 0, differing: 0, busyElsewhere: 0, byFeed: 0, feedMissed: 0, rowsReceived: 0, rowsSent: 0, changedHere: 0, changedThere: 0, refused: 0, errors: [] }
}

export interface RoundStats {
  /** Partitions both sides carry. */
  shared: number
  /** Of those, partitions whose roots differed. */
  differing: number
  /** Differing partitions left to a later round: another round was reconciling them (ReconcileOptions.claim). */
  busyElsewhere: number
  /** Differing partitions brought in sync by the change feed alone (no digest tree walked). */
  byFeed: number
  /** Feed exchanges after which the roots still differed (a write meanwhile, or a peer's wrong answer): the tree finished them. */
  feedMissed: number
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

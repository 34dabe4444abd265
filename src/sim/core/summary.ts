/*
 * What a simulation run produces: the JSON summary (written as-is) from which the HTML report is
 * drawn. Plain data only, so a summary can be saved, compared and re-rendered later.
 */

/** A fault active over [from, to) in simulation milliseconds (to null: until the end). */
export interface FaultWindow {
  kind: string
  from: number
  to: number | null
  /** e.g. "peers 0-4 | 5-9", "peer 3", "loss 30%". */
  detail: string
}

export interface SimSeries {
  /** Sampling interval, simulation ms. */
  intervalMs: number
  /** Sample times, simulation ms since start. */
  t: number[]
  /** Peer labels, e.g. "p0" … in the order of `divergence`. */
  peers: string[]
  /**
   * Per peer, per sample: rows (of the partitions it carries) whose state differs from the final
   * converged state; null while the peer is down.
   */
  divergence: Array<Array<number | null>>
  /** Per sample: messages and bytes sent per second of simulation time, all peers together. */
  messagesPerSec: number[]
  bytesPerSec: number[]
}

export interface SimSummary {
  name: string
  mode: 'model' | 'real'
  seed: number
  peers: number
  ok: boolean
  /** Empty when ok. Each names the peer, table, partition and row involved. */
  violations: string[]
  /** One shell line that reruns exactly this run. */
  replay: string
  /** Model mode: hash of the event trace (same seed ⇒ same hash). Null in real-stack mode. */
  traceHash: string | null
  ops: { invoked: number; acknowledged: number; failed: number; byKind: Record<string, number> }
  /** Simulation ms: when the last fault ended (network healed) and when all live peers converged. */
  healedAt: number | null
  convergedAt: number | null
  timeToConvergeMs: number | null
  traffic: { messages: number; bytes: number; gossipMessages: number; gossipBytes: number; syncMessages: number; syncBytes: number }
  faults: FaultWindow[]
  /**
   * With roles (a scenario's mesh section, model mode): writes made outside the writer's rights,
   * and deltas peers refused because their author had no right to write them (each delivery counts).
   */
  roles?: { forbiddenWrites: number; acknowledgedForbidden: number; refusals: number; enforced: boolean }
  series: SimSeries
  /** Simulation ms the run covered, and wall-clock ms it took. */
  durationMs: number
  wallMs: number
}

/** One point of a sweep over the number of peers (several seeds each). */
export interface SweepPoint {
  peers: number
  mode: 'model' | 'real'
  runs: number
  failed: number
  convergeMs: { p50: number; p99: number; max: number }
  messages: { p50: number }
  bytes: { p50: number }
  wallMs: { p50: number }
}

export interface SweepSummary {
  name: string
  points: SweepPoint[]
  /** Every run's summary without its series (kept small). */
  runs: Array<Omit<SimSummary, 'series'>>
}

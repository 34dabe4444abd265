import { ShoalError } from '../errors.js'
import { escapeControls, type LogFields, type Logger } from '../log.js'

/**
 * Why something from a peer was refused: a ShoalError code (PROTOCOL_INVALID, DELTA_INVALID,
 * VALUE_INVALID, PARTITION_INVALID, TABLE_UNKNOWN, SCHEMA_CONFLICT, ROW_TOO_LARGE, …) or one of
 * the codes below for refusals that are not errors of ours.
 */
export type RefusalReason = string

export const REFUSED = {
  /** Gossipsub's own check failed (bad signature, …). */
  SIGNATURE: 'SIGNATURE_INVALID',
  UNSIGNED: 'UNSIGNED',
  /** A message naming another (table, partition) than its topic. */
  WRONG_TOPIC: 'WRONG_TOPIC',
  NOT_CARRIED: 'NOT_CARRIED',
  /** Over a per-peer rate (token bucket). */
  RATE_LIMITED: 'RATE_LIMITED',
  /** Over a concurrency bound (sync sessions, streams). */
  BUSY: 'BUSY',
  /** A stream that could not be read as frames. */
  STREAM: 'STREAM_INVALID',
} as const

/** Log lines written per reason per window; the rest are counted and summed up once. */
export const REFUSAL_LINES_PER_WINDOW = 5
export const REFUSAL_WINDOW_MS = 10_000

export function reasonOf(error: unknown): RefusalReason {
  return error instanceof ShoalError ? error.code : 'INTERNAL'
}

/**
 * Counts what peers send that this peer refuses, by reason (for /metrics and status), and logs
 * it without letting a peer flood the log: at most REFUSAL_LINES_PER_WINDOW lines per reason per
 * REFUSAL_WINDOW_MS, then one line saying how many more there were. Messages are escaped
 * (control characters) and cut, since they carry what peers sent.
 */
export class Refusals {
  private readonly byReason = new Map<RefusalReason, number>()
  private readonly windows = new Map<RefusalReason, { start: number; logged: number; suppressed: number }>()

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** `level`: 'debug' for refusals that are expected now and then from honest peers (still counted). */
  refuse(reason: RefusalReason, message: string, fields?: LogFields, level: 'warn' | 'debug' = 'warn'): void {
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1)
    const now = this.now()
    let window = this.windows.get(reason)
    if (window === undefined || now - window.start >= REFUSAL_WINDOW_MS) {
      if (window !== undefined && window.suppressed > 0) {
        this.logger.warn(`${window.suppressed} more refusals (${reason}) were not logged in the last ${Math.round((now - window.start) / 1000)} s`, { reason, suppressed: window.suppressed })
      }
      window = { start: now, logged: 0, suppressed: 0 }
      this.windows.set(reason, window)
    }
    if (window.logged < REFUSAL_LINES_PER_WINDOW) {
      window.logged++
      this.logger[level](escapeControls(message), { reason, ...fields })
    } else {
      window.suppressed++
    }
  }

  /** Refusals so far, by reason. */
  counts(): Record<RefusalReason, number> {
    return Object.fromEntries(this.byReason)
  }

  get total(): number {
    let sum = 0
    for (const n of this.byReason.values()) sum += n
    return sum
  }
}

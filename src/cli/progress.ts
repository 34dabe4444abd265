import type { LoadProgress } from '../status.js'
import { formatCount, formatLoad, shortPeerId } from './format.js'

export interface ProgressOutput {
  write(text: string): unknown
  /** A terminal gets one bar redrawn in place; a pipe or log file gets occasional lines. */
  isTTY?: boolean
}

export interface ProgressViewOptions {
  /** Least time between two lines for one load when not on a terminal. */
  lineIntervalMs?: number
  /** Least time between two redraws of the bar on a terminal. */
  redrawIntervalMs?: number
  /**
   * Loads smaller than this are not shown: every anti-entropy round that repairs a few rows
   * reports progress too, and those are routine (status and metrics count them).
   */
  minRows?: number
  now?: () => number
}

/** A progress report from the sync service; `done` marks the last one of a load. */
export type LoadUpdate = LoadProgress & { done?: boolean }

const keyOf = (p: LoadProgress): string => `${p.table}\u0000${p.partition}\u0000${p.from}`
const where = (p: LoadProgress): string => `${p.table}${p.partition === '' ? '' : `/${p.partition}`} from ${shortPeerId(p.from)}`

/**
 * Shows initial loads as they run: a bar redrawn in place on a terminal, otherwise a line per
 * load at most every few seconds (so logs stay readable), and a closing line when a load ends.
 * Updates arrive per received page, far more often than anyone can read, hence the throttling.
 */
export class LoadProgressView {
  private readonly loads = new Map<string, { last: LoadProgress; shownAt: number }>()
  private readonly lineIntervalMs: number
  private readonly redrawIntervalMs: number
  private readonly minRows: number
  private readonly now: () => number
  private barShown = false
  private lastRedraw = -Infinity

  constructor(
    private readonly out: ProgressOutput,
    options: ProgressViewOptions = {},
  ) {
    this.lineIntervalMs = options.lineIntervalMs ?? 5000
    this.redrawIntervalMs = options.redrawIntervalMs ?? 100
    this.minRows = options.minRows ?? 1000
    this.now = options.now ?? Date.now
  }

  update(p: LoadUpdate): void {
    const key = keyOf(p)
    const known = this.loads.get(key)
    if (p.done) {
      if (known !== undefined) this.finish(key, `loaded ${formatCount(p.received)} rows of ${where(p)}`)
      return
    }
    if (known === undefined && Math.max(p.received, p.expected) < this.minRows) return
    const last: LoadProgress = { table: p.table, partition: p.partition, from: p.from, received: p.received, expected: p.expected, ...(p.etaSeconds === undefined ? {} : { etaSeconds: p.etaSeconds }) }
    const now = this.now()
    if (this.out.isTTY) {
      this.loads.set(key, { last, shownAt: known?.shownAt ?? now })
      if (now - this.lastRedraw >= this.redrawIntervalMs) {
        this.lastRedraw = now
        this.out.write(`\r\x1b[K${formatLoad(last)}`)
        this.barShown = true
      }
    } else if (known === undefined || now - known.shownAt >= this.lineIntervalMs) {
      this.loads.set(key, { last, shownAt: now })
      this.out.write(`${formatLoad(last)}\n`)
    } else {
      known.last = last
    }
  }

  /**
   * Takes the loads still running (the sync service's status). A load shown here that is gone
   * from it without a final report ended early (its round failed or the peer left).
   */
  settle(running: readonly LoadProgress[]): void {
    const still = new Set(running.map(keyOf))
    for (const [key, { last }] of this.loads) {
      if (!still.has(key)) this.finish(key, `load of ${where(last)} ended after ${formatCount(last.received)} rows`)
    }
    for (const p of running) if (!this.loads.has(keyOf(p))) this.update(p)
  }

  /** Leaves the terminal on a fresh line (before other output, or when stopping). */
  clearBar(): void {
    if (!this.barShown) return
    this.out.write('\r\x1b[K')
    this.barShown = false
    this.lastRedraw = -Infinity
  }

  private finish(key: string, line: string): void {
    this.loads.delete(key)
    this.clearBar()
    this.out.write(`${line}\n`)
  }
}

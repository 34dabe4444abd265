/*
 * How fast anti-entropy pages come from one peer, and how big pages to it should therefore be.
 * A page sized for a LAN (256 KiB) takes 8 s on a 256 kbit/s link: a request timeout that fits the
 * LAN does not fit that link, and gossip queued behind the page waits those 8 s. So each peer's
 * pages are sized to PAGE_TARGET_MS of its measured throughput (between MIN and MAX), and the
 * throughput is measured on every answer big enough to tell. Pure: the caller supplies the
 * figures (bytes, milliseconds).
 */

/** A page should take about this long to arrive: short enough that gossip behind it waits little, long enough that a round-trip per page costs little. */
export const PAGE_TARGET_MS = 500
export const MIN_PAGE_BYTES = 8 * 1024
export const MAX_PAGE_BYTES = 256 * 1024
/** Before anything is measured: a page a 256 kbit/s link carries in about 2 s once deflated. */
export const FIRST_PAGE_BYTES = 64 * 1024
/** Answers smaller than this are all round-trip time, no throughput; they are not measured. */
export const MIN_SAMPLE_BYTES = 4 * 1024
/** Weight of the newest sample in the running estimate. */
const SMOOTHING = 0.3

export class LinkMeter {
  private estimate: number | null = null

  /** An answer of `bytes` (decoded: the unit pages are sized in) took `ms` from asking to its last byte. */
  observe(bytes: number, ms: number): void {
    if (!(bytes >= MIN_SAMPLE_BYTES) || !(ms >= 0) || !Number.isFinite(bytes) || !Number.isFinite(ms)) return
    const sample = bytes / (Math.max(ms, 1) / 1000)
    this.estimate = this.estimate === null ? sample : this.estimate * (1 - SMOOTHING) + sample * SMOOTHING
  }

  /** Decoded bytes per second, or null before the first measured answer. */
  bytesPerSecond(): number | null {
    return this.estimate
  }

  /** The page size to ask this peer for now. */
  pageBytes(): number {
    if (this.estimate === null) return FIRST_PAGE_BYTES
    return Math.round(Math.min(MAX_PAGE_BYTES, Math.max(MIN_PAGE_BYTES, (this.estimate * PAGE_TARGET_MS) / 1000)))
  }
}

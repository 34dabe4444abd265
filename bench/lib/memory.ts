/* Memory as the benchmarks see it: a full collection before a reading, and the peak RSS over a section. */

/** Two full collections (the second frees what finalizers of the first released); a no-op without `node --expose-gc`. */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) {
    g()
    g()
  }
}

export const hasGc = (): boolean => (globalThis as { gc?: unknown }).gc !== undefined

/** Samples the process's RSS every `everyMs` until stopped; `peak` is the highest seen. */
export class RssSampler {
  peak = process.memoryUsage.rss()
  private readonly timer: ReturnType<typeof setInterval>
  constructor(everyMs = 25) {
    this.timer = setInterval(() => this.sample(), everyMs)
  }
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss())
  }
  stop(): number {
    clearInterval(this.timer)
    this.sample()
    return this.peak
  }
}

/** Peak RSS of this process so far, in MiB. */
export const peakRssMiB = (): number => (process.resourceUsage().maxRSS * 1024) / 2 ** 20

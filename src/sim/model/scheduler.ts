/**
 * Virtual time for model-mode simulations: events run in (time, insertion) order, one at a time,
 * and after each one every promise it set in motion settles before the next event runs, so async
 * code (the anti-entropy reconciler) is driven deterministically without real timers.
 */
export class VirtualScheduler {
  private time = 0
  private seq = 0
  private readonly heap: Array<{ at: number; seq: number; fn: () => void }> = []
  private cancelled = new Set<number>()

  now(): number {
    return this.time
  }

  /** Runs `fn` after `ms` of virtual time; returns a cancel function. */
  schedule(ms: number, fn: () => void): () => void {
    const id = this.seq++
    this.push({ at: this.time + Math.max(0, ms), seq: id, fn })
    return () => this.cancelled.add(id)
  }

  get pending(): number {
    return this.heap.length
  }

  /** Runs events until virtual time would pass `until` (or none are left). */
  async runUntil(until: number): Promise<void> {
    while (this.heap.length > 0 && this.heap[0]!.at <= until) {
      const event = this.pop()
      this.time = event.at
      if (this.cancelled.delete(event.seq)) continue
      event.fn()
      await settle()
    }
    this.time = Math.max(this.time, until)
  }

  private push(e: { at: number; seq: number; fn: () => void }): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (before(h[parent]!, h[i]!)) break
      ;[h[parent], h[i]] = [h[i]!, h[parent]!]
      i = parent
    }
  }

  private pop(): { at: number; seq: number; fn: () => void } {
    const h = this.heap
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l]!, h[m]!)) m = l
        if (r < h.length && before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i]!, h[m]!]
        i = m
      }
    }
    return top
  }
}

function before(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

/** Resolves once every microtask queued so far (and those they queue) has run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

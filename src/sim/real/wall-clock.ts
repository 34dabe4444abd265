/*
 * Scenario time on the wall clock, for real-stack runs: scenario ms = wall ms since reset() / scale,
 * and a timeline of events at scenario times run by wall-clock timers.
 */

export class WallClock {
  private origin = performance.now()

  constructor(readonly scale: number) {}

  reset(): void {
    this.origin = performance.now()
  }

  now(): number {
    return (performance.now() - this.origin) / this.scale
  }

  /** Wall ms until scenario time `t`. */
  wallUntil(t: number): number {
    return Math.max(0, t * this.scale - (performance.now() - this.origin))
  }

  sleepUntil(t: number): Promise<void> {
    return sleep(this.wallUntil(t))
  }
}

/** Events at scenario times, run by wall-clock timers; flush() runs the rest at once, in order (those they add too). */
export class Timeline {
  private readonly tasks: Array<{ at: number; seq: number; fn: () => void; done: boolean; timer: ReturnType<typeof setTimeout> }> = []
  private seq = 0
  private cancelled = false

  constructor(private readonly clock: WallClock) {}

  at(at: number, fn: () => void): void {
    if (this.cancelled) return
    const task = { at, seq: this.seq++, fn, done: false, timer: undefined as unknown as ReturnType<typeof setTimeout> }
    task.timer = setTimeout(() => this.run(task), this.clock.wallUntil(at))
    this.tasks.push(task)
  }

  flush(): void {
    for (;;) {
      const next = this.tasks.filter((t) => !t.done).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (next === undefined) return
      this.run(next)
    }
  }

  cancel(): void {
    this.cancelled = true
    for (const t of this.tasks) {
      t.done = true
      clearTimeout(t.timer)
    }
  }

  private run(task: { fn: () => void; done: boolean; timer: ReturnType<typeof setTimeout> }): void {
    if (task.done) return
    task.done = true
    clearTimeout(task.timer)
    // Done tasks are dropped now and then, so a long run's timeline stays small.
    if (this.tasks.length > 1024) {
      const firstOpen = this.tasks.findIndex((t) => !t.done)
      this.tasks.splice(0, firstOpen === -1 ? this.tasks.length : firstOpen)
    }
    task.fn()
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

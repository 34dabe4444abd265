/* Progress on stderr (stdout holds the results): timestamped lines, and a bar for long multi-process runs. */

/** A printer of `[tag   12.3s] message` lines, the seconds counted from its creation. */
export function progressLog(tag: string): (message: string) => void {
  const started = performance.now()
  return (message) => {
    const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
    process.stderr.write(`[${tag} ${t}s] ${message}\n`)
  }
}

/** `[####····]  42% 3:07 text`: redrawn in place on a terminal, one line each otherwise. */
export class ProgressBar {
  private done = 0
  private readonly t0 = performance.now()
  private readonly tty = process.stderr.isTTY === true
  constructor(private total: number) {}
  step(n = 1): void {
    this.done = Math.min(this.total, this.done + n)
  }
  show(text: string, permanent = false): void {
    const width = 24
    const filled = Math.round((width * this.done) / Math.max(1, this.total))
    const s = Math.round((performance.now() - this.t0) / 1000)
    const bar = `[${'#'.repeat(filled)}${'·'.repeat(width - filled)}] ${String(Math.round((100 * this.done) / Math.max(1, this.total))).padStart(3)}% ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
    const line = `${bar} ${text}`
    if (this.tty) process.stderr.write(`\r\x1b[K${line}${permanent ? '\n' : ''}`)
    else process.stderr.write(`${line}\n`)
  }
  clear(): void {
    if (this.tty) process.stderr.write('\r\x1b[K')
  }
}

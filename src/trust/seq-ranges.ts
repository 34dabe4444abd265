/**
 * A set of sequence numbers held as sorted, merged, inclusive ranges: what one author's
 * changesets to one partition a replica holds. Compared between replicas to find the changesets
 * one side lacks (Corrosion's version-gap sync). Pure.
 */
export class SeqRanges {
  private ranges: Array<[number, number]> = []

  static from(list: ReadonlyArray<readonly [number, number]>): SeqRanges {
    const out = new SeqRanges()
    for (const [from, to] of list) out.addRange(from, to)
    return out
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0
  }

  /** The highest sequence number held (0 if none). */
  get max(): number {
    return this.ranges.length === 0 ? 0 : this.ranges[this.ranges.length - 1]![1]
  }

  /** How many numbers are held. */
  get count(): number {
    let n = 0
    for (const [from, to] of this.ranges) n += to - from + 1
    return n
  }

  has(seq: number): boolean {
    let lo = 0
    let hi = this.ranges.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const [from, to] = this.ranges[mid]!
      if (seq < from) hi = mid - 1
      else if (seq > to) lo = mid + 1
      else return true
    }
    return false
  }

  add(seq: number): void {
    this.addRange(seq, seq)
  }

  addRange(from: number, to: number): void {
    if (to < from) return
    const out: Array<[number, number]> = []
    let placed = false
    for (const [a, b] of this.ranges) {
      if (b + 1 < from) out.push([a, b])
      else if (to + 1 < a) {
        if (!placed) {
          out.push([from, to])
          placed = true
        }
        out.push([a, b])
      } else {
        from = Math.min(from, a)
        to = Math.max(to, b)
      }
    }
    if (!placed) out.push([from, to])
    this.ranges = out.sort((x, y) => x[0] - y[0])
  }

  /** The ranges of `this` that `other` does not hold. */
  missingFrom(other: SeqRanges): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (const [from, to] of this.ranges) {
      let start = from
      for (const [a, b] of other.ranges) {
        if (b < start) continue
        if (a > to) break
        if (a > start) out.push([start, Math.min(to, a - 1)])
        start = Math.max(start, b + 1)
        if (start > to) break
      }
      if (start <= to) out.push([start, to])
    }
    return out
  }

  toList(): Array<[number, number]> {
    return this.ranges.map(([a, b]) => [a, b])
  }
}

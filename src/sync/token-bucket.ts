/**
 * A token bucket: `rate` tokens a second, at most `burst` saved up. Pure: the clock is passed in.
 * Used per peer for what a peer may make this one do (sync requests, gossip messages and bytes),
 * so a misbehaving peer is slowed down to a known cost instead of taking the CPU.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError(`a token bucket needs rate > 0 and burst ≥ 1 (got ${rate}, ${burst})`)
    this.tokens = burst
    this.last = now
  }

  /** Takes `cost` tokens if there are that many (after refilling up to `now`); false otherwise, taking none. */
  take(now: number, cost = 1): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
      this.last = now
    }
    if (this.tokens < cost) return false
    this.tokens -= cost
    return true
  }
}

/** One bucket per key (a peer id), with at most `maxKeys` kept (the least recently used go first). */
export class BucketsByKey {
  private readonly buckets = new Map<string, TokenBucket>()

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxKeys = 4096,
  ) {}

  take(key: string, now: number, cost = 1): boolean {
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!)
      bucket = new TokenBucket(this.rate, this.burst, now)
    } else {
      this.buckets.delete(key)
    }
    this.buckets.set(key, bucket)
    return bucket.take(now, cost)
  }
}

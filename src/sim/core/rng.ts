import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64'
import { uniformInt } from 'pure-rand/distribution/uniformInt'
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus'
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator'

/**
 * A seeded random source: the only randomness the simulator uses, so one seed replays the same
 * workload, fault schedule and network behaviour. `fork` derives an independent stream per
 * purpose, so adding draws in one place (say, the workload) does not shift another (the network).
 */
export class Rng {
  private readonly gen: RandomGenerator

  constructor(readonly seed: number) {
    this.gen = xoroshiro128plus(seed | 0)
  }

  /** An independent stream for `label`, fixed by this stream's seed. */
  fork(label: string): Rng {
    let h = this.seed | 0
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193)
    return new Rng(h ^ (h >>> 15))
  }

  /** Integer in [min, max], both included. */
  int(min: number, max: number): number {
    return uniformInt(this.gen, min, max)
  }

  /** Float in [0, 1). */
  float(): number {
    return uniformFloat64(this.gen)
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list')
    return items[this.int(0, items.length - 1)]!
  }

  /** Fisher–Yates, in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      ;[items[i], items[j]] = [items[j]!, items[i]!]
    }
    return items
  }

  /** Picks a key by weight from { key: weight }. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as Array<[K, number]>
    const total = entries.reduce((sum, [, w]) => sum + w, 0)
    let x = this.float() * total
    for (const [k, w] of entries) {
      if (x < w) return k
      x -= w
    }
    return entries[entries.length - 1]![0]
  }
}

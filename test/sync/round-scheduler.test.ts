import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RoundScheduler, shuffle, type RoundOutcome, type RoundSchedulerInit } from '../../src/sync/round-scheduler.js'

/** Virtual time: timers fire in order when the test advances the clock. */
class FakeClock {
  private t = 0
  private seq = 0
  private readonly timers = new Map<number, { at: number; fn: () => void }>()

  now(): number {
    return this.t
  }

  schedule(fn: () => void, ms: number): () => void {
    const id = this.seq++
    this.timers.set(id, { at: this.t + ms, fn })
    return () => this.timers.delete(id)
  }

  /** Runs every timer due up to now + ms, in time order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined
      for (const entry of this.timers) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry
      if (next === undefined) break
      this.timers.delete(next[0])
      this.t = next[1].at
      next[1].fn()
      await Promise.resolve()
    }
    this.t = end
  }
}

/** A scheduler whose rounds run until the test ends them, recording who was started when. */
function harness(options: Partial<RoundSchedulerInit> = {}) {
  const clock = new FakeClock()
  const started: Array<{ peer: string; at: number }> = []
  let candidates: string[] = []
  let random = 0.5
  const scheduler: RoundScheduler = new RoundScheduler({
    clock,
    random: () => random,
    intervalMs: 0,
    peersPerRound: 2,
    connectDelayMs: 100,
    learnedQuietMs: 1000,
    learnedMaxWaitMs: 10_000,
    candidates: () => candidates,
    run: (peer) => {
      if (scheduler.outboundStarting(peer)) started.push({ peer, at: clock.now() })
    },
    ...options,
  })
  scheduler.start()
  const end = (peer: string, outcome: RoundOutcome = 'ok', inSync?: boolean): void => {
    const s = [...started].reverse().find((x) => x.peer === peer)!
    scheduler.outboundEnded(peer, s.at, outcome, inSync)
  }
  return {
    clock,
    scheduler,
    started,
    end,
    setCandidates: (c: string[]) => (candidates = c),
    setRandom: (r: number) => (random = r),
  }
}

describe('anti-entropy round scheduler', () => {
  it('starts a round after a jittered delay when a peer connects, once', async () => {
    const h = harness()
    h.scheduler.connected('B', 0)
    await h.clock.advance(49)
    expect(h.started).toEqual([])
    await h.clock.advance(1)
    expect(h.started).toEqual([{ peer: 'B', at: 50 }])
    h.end('B')
    // identify again on the same connection (identify push): the round after it opened covers it
    h.scheduler.connected('B', 0)
    await h.clock.advance(1000)
    expect(h.started).toHaveLength(1)
    // a new connection opened after that round started asks for another
    h.scheduler.connected('B', 500)
    await h.clock.advance(1000)
    expect(h.started).toHaveLength(2)
  })

  it('on a new connection the side with the smaller id starts at once, the other waits and finds it done', async () => {
    const a = harness({ self: 'A' })
    a.scheduler.connected('B', 0)
    await a.clock.advance(0)
    expect(a.started).toEqual([{ peer: 'B', at: 0 }])
    const c = harness({ self: 'C' })
    c.scheduler.connected('B', 0)
    await c.clock.advance(49)
    expect(c.started).toEqual([])
    // B's round (the smaller id's) ran meanwhile and completed: C has nothing to start.
    c.scheduler.inboundStarted('B')
    c.scheduler.inboundEnded('B', 10, true)
    await c.clock.advance(1000)
    expect(c.started).toEqual([])
  })

  it('never runs two rounds with one peer; a round asked for meanwhile follows the running one', async () => {
    const h = harness()
    h.scheduler.request('B')
    h.scheduler.request('B')
    expect(h.started).toHaveLength(1)
    h.end('B')
    await h.clock.advance(200)
    expect(h.started).toHaveLength(2)
    h.end('B')
    await h.clock.advance(1000)
    expect(h.started).toHaveLength(2)
  })

  it('counts inbound rounds as busy, and declines an inbound round only from a larger id while initiating', async () => {
    const h = harness()
    h.scheduler.inboundStarted('B')
    h.scheduler.request('B')
    expect(h.started).toEqual([])
    h.scheduler.inboundEnded('B', 0, true)
    await h.clock.advance(200)
    expect(h.started).toHaveLength(1)
    expect(h.scheduler.shouldDecline('B', 'A')).toBe(true)
    expect(h.scheduler.shouldDecline('B', 'C')).toBe(false)
    expect(h.scheduler.shouldDecline('X', 'A')).toBe(false)
  })

  it('a connection opened while a round runs is decided when that round ends', async () => {
    const h = harness()
    h.scheduler.request('B') // round started at t=0
    await h.clock.advance(10)
    h.scheduler.connected('B', 10)
    await h.clock.advance(200)
    expect(h.started).toHaveLength(1)
    h.end('B', 'failed')
    await h.clock.advance(200)
    // the failed round did not cover the new connection
    expect(h.started).toHaveLength(2)
  })

  it('after rows from one peer changed this replica, reconciles with the other peers soon, except those a round covers anyway', async () => {
    const h = harness()
    h.scheduler.request('C') // a round with C started before the rows arrived
    h.scheduler.repaired('A', ['A', 'B', 'C', 'D'])
    await h.clock.advance(20)
    h.scheduler.request('D') // a round with D starting after them covers D
    h.end('D')
    await h.clock.advance(200)
    // B now; C again once its running round ends (it began before the rows); never A, nor D twice
    expect(h.started.map((s) => s.peer)).toEqual(['C', 'D', 'B'])
    h.end('C')
    await h.clock.advance(200)
    expect(h.started.map((s) => s.peer)).toEqual(['C', 'D', 'B', 'C'])
  })

  it('waits for gossip on an announced partition to go quiet, at most learnedMaxWaitMs', async () => {
    let lastGossip = 0
    const h = harness({ gossipIdleMs: () => h.clock.now() - lastGossip })
    h.scheduler.learnedPartition('B', 'stock', '7')
    // gossip keeps coming every 500 ms
    for (let i = 0; i < 6; i++) {
      await h.clock.advance(500)
      lastGossip = h.clock.now()
    }
    expect(h.started).toEqual([])
    await h.clock.advance(1200)
    expect(h.started).toHaveLength(1)
    h.end('B')
    // endless gossip: the round still comes after the maximum wait
    h.scheduler.learnedPartition('B', 'stock', '8')
    for (let i = 0; i < 25; i++) {
      await h.clock.advance(500)
      lastGossip = h.clock.now()
    }
    expect(h.started).toHaveLength(2)
    expect(h.started[1]!.at - h.started[0]!.at).toBeLessThanOrEqual(10_000 + 500 + 200)
  })

  it('periodic rounds pick peersPerRound of the idle candidates, jittered 50–150 %', async () => {
    const h = harness({ intervalMs: 1000 })
    h.setCandidates(['B', 'C', 'D'])
    h.scheduler.inboundStarted('D')
    await h.clock.advance(1000) // random 0.5 → 1.0 × interval
    expect(h.started.map((s) => s.peer).sort()).toEqual(['B', 'C'])
    expect(h.started.every((s) => s.at === 1000)).toBe(true)
  })

  it('a periodic tick skips peers that ran a complete round with this one within the interval', async () => {
    const h = harness({ intervalMs: 1000, peersPerRound: 4 })
    await h.clock.advance(1000) // the first tick, with no candidates yet
    h.setCandidates(['B', 'C', 'D', 'E'])
    // B's round with us started 400 ms before the next tick; C's 1,100 ms before (out of the
    // interval); D's was cut off (not complete); E's ran from here, 200 ms before: only B's counts.
    await h.clock.advance(600)
    h.scheduler.inboundStarted('B')
    h.scheduler.inboundEnded('B', 1600, true)
    h.scheduler.inboundStarted('D')
    h.scheduler.inboundEnded('D', 1600, false)
    h.scheduler.request('E')
    await h.clock.advance(200)
    h.end('E', 'ok')
    h.scheduler.inboundStarted('C')
    h.scheduler.inboundEnded('C', 900, true)
    const before = h.started.length
    await h.clock.advance(200) // the tick at 2,000
    expect(h.started.slice(before).map((s) => s.peer).sort()).toEqual(['C', 'D', 'E'])
  })

  it('backs off while periodic rounds find everything in sync, up to maxIntervalMs, and comes back at once when one finds a difference', async () => {
    const h = harness({ intervalMs: 1000, maxIntervalMs: 8000, peersPerRound: 1 })
    h.setCandidates(['B'])
    const gaps: number[] = []
    let last = 0
    for (let i = 0; i < 6; i++) {
      const before = h.started.length
      while (h.started.length === before) await h.clock.advance(100)
      const round = h.started[h.started.length - 1]!
      gaps.push(round.at - last)
      last = round.at
      h.end('B', 'ok', true)
    }
    // random 0.5: each wait is exactly the mean interval, which doubles to the cap (the wait after a
    // round was set when that round started, so each doubling shows one round later).
    expect(gaps).toEqual([1000, 1000, 2000, 4000, 8000, 8000])
    expect(h.scheduler.periodicIntervalMs()).toBe(8000)
    // A round that had something to repair: the next one comes at the normal pace.
    const before = h.started.length
    h.scheduler.request('B')
    h.end('B', 'ok', false)
    expect(h.scheduler.periodicIntervalMs()).toBe(1000)
    await h.clock.advance(1000)
    expect(h.started.length).toBe(before + 2)
    // A failed round or one whose outcome is unknown leaves the pace as it is.
    h.end('B', 'failed')
    expect(h.scheduler.periodicIntervalMs()).toBe(1000)
  })

  it('doubles the interval once for the several in-sync rounds of one periodic tick', async () => {
    const h = harness({ intervalMs: 1000, peersPerRound: 3 })
    h.setCandidates(['B', 'C', 'D'])
    await h.clock.advance(1000)
    expect(h.started.map((s) => s.peer).sort()).toEqual(['B', 'C', 'D'])
    for (const peer of ['B', 'C', 'D']) h.end(peer, 'ok', true)
    expect(h.scheduler.periodicIntervalMs()).toBe(2000)
  })

  it('stops: no round starts after stop()', async () => {
    const h = harness({ intervalMs: 1000 })
    h.setCandidates(['B'])
    h.scheduler.connected('C', 0)
    h.scheduler.stop()
    await h.clock.advance(10_000)
    expect(h.started).toEqual([])
  })
})

describe('shuffle', () => {
  it('is a permutation', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })), (items, stream) => {
        const it = stream[Symbol.iterator]()
        const out = shuffle(items, () => it.next().value as number)
        expect([...out].sort()).toEqual([...items].sort())
      }),
    )
  })

  it('puts every element first equally often (chi-square over 3 elements)', () => {
    // A deterministic generator, so the check is repeatable: a linear congruential sequence.
    let x = 12345
    const random = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      return x / 2 ** 32
    }
    const counts = new Map<string, number>()
    const n = 60_000
    for (let i = 0; i < n; i++) {
      const order = shuffle(['a', 'b', 'c'], random).join('')
      counts.set(order, (counts.get(order) ?? 0) + 1)
    }
    expect(counts.size).toBe(6)
    const expected = n / 6
    const chi = [...counts.values()].reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0)
    // 5 degrees of freedom: p = 0.001 at 20.5. The biased sort(() => random() - 0.5) gives hundreds.
    expect(chi).toBeLessThan(20.5)
  })
})

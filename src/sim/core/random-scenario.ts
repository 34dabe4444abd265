import { Rng } from './rng.js'
import { parseScenario, type Scenario } from './scenario.js'

export interface RandomScenarioOptions {
  minPeers?: number
  maxPeers?: number
  durationMs?: number
  opsPerSecond?: number
}

/**
 * A short random schedule from a seed: 3–7 peers (by default), some carrying only one store's
 * partitions, one to three faults of any kind. The seed alone reproduces it, so a failing schedule
 * is replayed with `shoal sim --random --seed N`.
 */
export function randomScenario(seed: number, options: RandomScenarioOptions = {}): Scenario {
  const rng = new Rng(seed).fork('schedule')
  const peers = rng.int(options.minPeers ?? 3, options.maxPeers ?? 7)
  const durationMs = options.durationMs ?? 3_000
  const partitions = ['1', '2', '3']
  const carries: unknown[] = []
  // Peer 0 carries everything (HQ); some others carry one store's partitions.
  for (let p = 1; p < peers; p++) {
    if (rng.chance(0.4)) {
      const store = rng.pick(partitions)
      carries.push({ peers: [p], tables: { stock: [store], sales: [store] } })
    }
  }
  const faults: unknown[] = []
  const count = rng.int(1, 3)
  const span = (): { at: number; for: number } => {
    const at = rng.int(0, Math.floor(durationMs * 0.6))
    return { at, for: rng.int(Math.floor(durationMs * 0.1), durationMs - at) }
  }
  const somePeers = (): number[] => rng.shuffle(Array.from({ length: peers }, (_, i) => i)).slice(0, rng.int(1, peers - 1))
  for (let i = 0; i < count; i++) {
    const kind = rng.pick(['partition', 'isolate', 'bridge', 'ring', 'loss', 'duplicate', 'delay', 'crash', 'join', 'skew', 'swizzle'] as const)
    switch (kind) {
      case 'partition': {
        const left = somePeers()
        faults.push({ kind, ...span(), groups: [left, Array.from({ length: peers }, (_, p) => p).filter((p) => !left.includes(p))] })
        break
      }
      case 'bridge': {
        if (peers < 3) break
        const order = rng.shuffle(Array.from({ length: peers }, (_, p) => p))
        const via = order[0]!
        const cut = rng.int(1, peers - 2)
        faults.push({ kind, ...span(), groups: [[via, ...order.slice(1, 1 + cut)], [via, ...order.slice(1 + cut)]], via })
        break
      }
      case 'ring':
        faults.push({ kind, ...span() })
        break
      case 'isolate':
      case 'crash':
        faults.push({ kind, ...span(), peer: rng.int(0, peers - 1) })
        break
      case 'join': {
        const peer = rng.int(1, peers - 1)
        if (!faults.some((f) => (f as { peer?: number }).peer === peer)) faults.push({ kind, at: rng.int(0, Math.floor(durationMs * 0.8)), peer })
        break
      }
      case 'skew':
        faults.push({ kind, ...span(), peer: rng.int(0, peers - 1), ms: rng.int(-60_000, 60_000) })
        break
      case 'loss':
      case 'duplicate':
        faults.push({ kind, ...span(), rate: rng.pick([0.1, 0.3, 0.5]) })
        break
      case 'delay':
        faults.push({ kind, ...span(), minMs: 5, maxMs: rng.pick([50, 200, 800]) })
        break
      case 'swizzle':
        faults.push({ kind, at: rng.int(0, Math.floor(durationMs * 0.3)), stepMs: 100, links: rng.int(1, Math.max(1, (peers * (peers - 1)) / 2 - 1)) })
        break
    }
  }
  return parseScenario(
    {
      name: `random-${seed}`,
      seed,
      peers,
      carries,
      durationMs,
      settleMs: 30_000,
      faults,
      workload: { opsPerSecond: options.opsPerSecond ?? 30, keys: 20, hotKeys: 4, hotFraction: 0.6, partitions },
      antiEntropy: { intervalMs: 500, peersPerRound: 2, requestTimeoutMs: 1_000 },
      sampleMs: 100,
    },
    `random schedule ${seed}`,
  )
}

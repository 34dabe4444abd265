import type { Rng } from './rng.js'
import type { FaultSpec } from './scenario.js'

/** A cut: true when the link between two peers is down. */
export type Cut = (a: number, b: number) => boolean

/** One line saying what a fault does, for fault windows in summaries and reports. */
export function describeFault(f: FaultSpec): string {
  switch (f.kind) {
    case 'partition':
      return f.groups.map((g) => g.join(',')).join(' | ')
    case 'bridge':
      return `${f.groups[0].join(',')} | ${f.groups[1].join(',')} via ${f.via}`
    case 'isolate':
    case 'crash':
    case 'join':
      return `peer ${f.peer}`
    case 'skew':
      return `peer ${f.peer} ${f.ms > 0 ? '+' : ''}${f.ms} ms`
    case 'loss':
    case 'duplicate':
      return `${Math.round(f.rate * 100)}%${f.links === null ? '' : ` on ${f.links.length} links`}`
    case 'delay':
      return `${f.minMs}-${f.maxMs} ms${f.links === null ? '' : ` on ${f.links.length} links`}`
    case 'ring':
      return 'majorities ring'
    case 'swizzle':
      return `${f.links} links, one per ${f.stepMs} ms`
  }
}

/**
 * The links a partition-shaped fault cuts among n peers (null for faults of other kinds), the same
 * in model and real-stack mode. `rng` places peers on the ring of a majorities-ring fault.
 */
export function cutOf(f: FaultSpec, n: number, rng: Rng): Cut | null {
  switch (f.kind) {
    case 'partition': {
      const group = new Map<number, number>()
      f.groups.forEach((g, i) => g.forEach((p) => group.set(p, i)))
      // Peers not listed form one more group together.
      return (a, b) => (group.get(a) ?? -1) !== (group.get(b) ?? -1)
    }
    case 'isolate':
      return (a, b) => a === f.peer || b === f.peer
    case 'bridge': {
      const [left, right] = [new Set(f.groups[0]), new Set(f.groups[1])]
      return (a, b) => a !== f.via && b !== f.via && ((left.has(a) && right.has(b)) || (right.has(a) && left.has(b)))
    }
    case 'ring': {
      // Each peer reaches a majority (itself and its nearest neighbours), no two the same one.
      const order = rng.shuffle(Array.from({ length: n }, (_, i) => i))
      const position = new Map(order.map((p, i) => [p, i]))
      const reach = Math.floor(Math.floor(n / 2) / 2)
      return (a, b) => {
        const d = Math.abs(position.get(a)! - position.get(b)!)
        return Math.min(d, n - d) > reach
      }
    }
    default:
      return null
  }
}

/**
 * When a fault ends (scenario ms): `at + for`, or the end of the workload when it has no `for`
 * (a join has no end), and the latest time anything of it still acts (a swizzle restores its links
 * one by one after its cut phase), which the heal must wait for.
 */
export function faultSpan(f: FaultSpec, durationMs: number): { end: number; lastEffect: number } {
  const end = f.for === null ? (f.kind === 'join' ? f.at : durationMs) : f.at + f.for
  return { end, lastEffect: Math.max(end, f.kind === 'swizzle' ? f.at + 2 * f.links * f.stepMs : 0) }
}

/** One key per undirected link. */
export function linkKey(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`
}

/**
 * The steps of a swizzle, relative to its start: its links cut one per `stepMs` in random order,
 * then (after `for`, or once all are cut) restored one per `stepMs` in another random order.
 */
export function swizzleSteps(f: FaultSpec & { kind: 'swizzle' }, n: number, rng: Rng): Array<{ afterMs: number; link: [number, number]; cut: boolean }> {
  const all: Array<[number, number]> = []
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) all.push([a, b])
  const chosen = rng.shuffle(all).slice(0, f.links)
  const restoreAt = f.for ?? chosen.length * f.stepMs
  return [
    ...chosen.map((link, i) => ({ afterMs: i * f.stepMs, link, cut: true })),
    ...rng.shuffle([...chosen]).map((link, i) => ({ afterMs: restoreAt + i * f.stepMs, link, cut: false })),
  ]
}

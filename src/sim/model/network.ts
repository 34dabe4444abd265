import { linkKey } from '../core/faults.js'
import type { Rng } from '../core/rng.js'
import type { VirtualScheduler } from './scheduler.js'

/** 'close': the end of an anti-entropy session (a stream closing), delivered like a message but not counted, as a running peer's counters count frames only. */
export type MessageKind = 'gossip' | 'sync' | 'close'

/** A rule in force on some links (all when `links` is null). */
interface LinkRule {
  links: Set<string> | null
  rate?: number
  minMs?: number
  maxMs?: number
}

export interface TrafficCounters {
  messages: number
  bytes: number
  gossipMessages: number
  gossipBytes: number
  syncMessages: number
  syncBytes: number
}

/**
 * The simulated network between model-mode peers: per-message latency with jitter (so messages
 * reorder), and faults as rules that come and go — cuts (partitions of every shape), loss,
 * duplication, extra delay — plus peers that are down. Traffic is counted when sent.
 */
export class SimNetwork {
  readonly traffic: TrafficCounters = { messages: 0, bytes: 0, gossipMessages: 0, gossipBytes: 0, syncMessages: 0, syncBytes: 0 }
  private readonly cuts = new Map<number, (a: number, b: number) => boolean>()
  private readonly loss = new Map<number, LinkRule>()
  private readonly dup = new Map<number, LinkRule>()
  private readonly delay = new Map<number, LinkRule>()
  private readonly down = new Set<number>()
  private nextRule = 0

  constructor(
    private readonly scheduler: VirtualScheduler,
    private readonly rng: Rng,
    private readonly latency: { latencyMs: number; jitterMs: number },
    /** Called for every message sent, for the trace. */
    private readonly trace: (line: string) => void,
  ) {}

  reachable(a: number, b: number): boolean {
    if (this.down.has(a) || this.down.has(b)) return false
    for (const cut of this.cuts.values()) if (cut(a, b)) return false
    return true
  }

  isUp(peer: number): boolean {
    return !this.down.has(peer)
  }

  setUp(peer: number, up: boolean): void {
    if (up) this.down.delete(peer)
    else this.down.add(peer)
  }

  /** Adds a cut predicate (true = the link is cut); returns its removal. */
  addCut(cut: (a: number, b: number) => boolean): () => void {
    const id = this.nextRule++
    this.cuts.set(id, cut)
    return () => this.cuts.delete(id)
  }

  addLoss(rate: number, links: Array<[number, number]> | null): () => void {
    return this.addRule(this.loss, { rate, links: toSet(links) })
  }

  addDuplication(rate: number, links: Array<[number, number]> | null): () => void {
    return this.addRule(this.dup, { rate, links: toSet(links) })
  }

  addDelay(minMs: number, maxMs: number, links: Array<[number, number]> | null): () => void {
    return this.addRule(this.delay, { minMs, maxMs, links: toSet(links) })
  }

  /**
   * Sends `bytes` from one peer to another; `deliver` runs at the receiver after the link's
   * latency unless the message is lost (cut, down at either end when sent or delivered, loss).
   */
  send(from: number, to: number, kind: MessageKind, bytes: number, deliver: () => void): void {
    if (kind !== 'close') {
      this.traffic.messages++
      this.traffic.bytes += bytes
    }
    if (kind === 'gossip') {
      this.traffic.gossipMessages++
      this.traffic.gossipBytes += bytes
    } else if (kind === 'sync') {
      this.traffic.syncMessages++
      this.traffic.syncBytes += bytes
    }
    const key = linkKey(from, to)
    if (!this.reachable(from, to) || this.applies(this.loss, key, (r) => this.rng.chance(r.rate!))) {
      this.trace(`drop ${kind} ${from}>${to} ${bytes}`)
      return
    }
    const copies = this.applies(this.dup, key, (r) => this.rng.chance(r.rate!)) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      let ms = this.latency.latencyMs + this.rng.float() * this.latency.jitterMs
      for (const rule of this.delay.values()) if (rule.links === null || rule.links.has(key)) ms += rule.minMs! + this.rng.float() * (rule.maxMs! - rule.minMs!)
      this.trace(`send ${kind} ${from}>${to} ${bytes} ${ms.toFixed(3)}`)
      this.scheduler.schedule(ms, () => {
        // Sent before a crash still arrives; a peer that is down receives nothing.
        if (this.down.has(to)) return
        deliver()
      })
    }
  }

  private addRule(map: Map<number, LinkRule>, rule: LinkRule): () => void {
    const id = this.nextRule++
    map.set(id, rule)
    return () => map.delete(id)
  }

  private applies(map: Map<number, LinkRule>, key: string, test: (r: LinkRule) => boolean): boolean {
    for (const rule of map.values()) if ((rule.links === null || rule.links.has(key)) && test(rule)) return true
    return false
  }
}

function toSet(links: Array<[number, number]> | null): Set<string> | null {
  return links === null ? null : new Set(links.map(([a, b]) => linkKey(a, b)))
}

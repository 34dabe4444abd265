/*
 * The mesh benchmark's harness: real peers (store + libp2p node + gossip + anti-entropy, as
 * `shoal start` runs them) on 127.0.0.1 in this process, waits for a settled mesh, anti-entropy
 * rounds on demand, and the TCP bytes each peer's sockets wrote (bench/lib/wire.ts).
 */
import { parseConfig, type PeerConfig } from '../../src/config.js'
import type { EngineName, TableSchema } from '../../src/index.js'
import { callbackLogger } from '../../src/log.js'
import { Peer } from '../../src/peer/peer.js'
import { topicFor } from '../../src/sync/gossip.js'
import type { RoundStats } from '../../src/sync/reconciler.js'
import { eventually, sleep } from '../lib/poll.js'
import { removeDir, tempDir } from '../lib/temp.js'
import { portOf, wireMark, wireSince } from '../lib/wire.js'
import { PARTITIONS, progress, tableOf } from './config.js'
import { materialFor } from './trust.js'

/** Local ports of the sockets a peer owns: its listener's (inbound) and, seen from the other side, its outbound ones. */
export function portsOf(r: Running, all: Running[]): Set<number> {
  const ports = new Set([r.port])
  for (const other of all) {
    if (other === r) continue
    for (const c of other.peer.node.libp2p.getConnections(r.peer.node.peerId)) {
      if (c.direction === 'inbound') ports.add(portOf(c.remoteAddr.toString()))
    }
  }
  return ports
}
/** Background TCP bytes/s (gossipsub heartbeats, discovery announcements, pings) of an idle mesh: of one peer, and of all. */
export async function idleWireRate(peers: Running[], writer: Running, ms: number): Promise<{ writer: number; all: number }> {
  const mark = wireMark()
  await sleep(ms)
  return { writer: wireSince(mark, portsOf(writer, peers)) / (ms / 1000), all: wireSince(mark) / (ms / 1000) }
}

export interface Running {
  name: string
  peer: Peer
  dir: string
  port: number
  logs: string[]
}

/** Every peer's log lines (refusals, sync errors), reported at the end of the run. */
export const allLogs: string[] = []

export async function startPeer(name: string, options: { tables: TableSchema[]; dir?: string; bootstrap?: string[]; connectDelayMs?: number }): Promise<Running> {
  const dir = options.dir ?? (await tempDir('mesh', name))
  const config: PeerConfig = {
    ...parseConfig({ name, tables: options.tables, open: true }, `bench:${name}`),
    data: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: options.bootstrap ?? [],
    mdns: false,
    http: null,
  }
  const logs: string[] = []
  const trust = await materialFor(dir)
  const peer = await Peer.start(config, {
    ...(trust === undefined ? {} : { trust }),
    logger: callbackLogger((_level, m) => {
      logs.push(m)
      allLogs.push(`${name}: ${m}`)
    }),
    net: { discoveryIntervalMs: 1_000, redial: { minDelayMs: 200, maxDelayMs: 1_000 } },
    // No periodic rounds: anti-entropy runs only on connect / partition announcements / syncWith.
    sync: { intervalMs: 0, connectDelayMs: options.connectDelayMs ?? 100 },
  })
  return { name, peer, dir, port: portOf(peer.node.multiaddrs()[0]!.toString()), logs }
}

export const addr = (r: Running): string => r.peer.node.multiaddrs()[0]!.toString()

export async function stopAll(peers: Running[]): Promise<void> {
  for (const r of peers) await r.peer.stop()
  for (const r of peers) await removeDir(r.dir)
}

/** Starts A, then `others` peers bootstrapping to A, and waits until every peer is connected to every other. */
export async function startMesh(others: number, tables: TableSchema[]): Promise<Running[]> {
  const a = await startPeer('A', { tables })
  const peers = [a]
  for (let i = 0; i < others; i++) peers.push(await startPeer(String.fromCharCode(66 + i), { tables, bootstrap: [addr(a)] }))
  await eventually('a full mesh of connections', () => peers.every((p) => p.peer.node.connectedPeers().length >= peers.length - 1), 60_000, 50)
  return peers
}

export function dataTopics(engine: EngineName): string[] {
  return Array.from({ length: PARTITIONS }, (_, p) => topicFor(tableOf(engine), String(p)))
}

/**
 * Waits until every peer's gossipsub mesh on the topics holds all the other peers, or at least
 * D_lo = 4 of them (gossipsub grafts more only below D_lo). A's publishes reach every subscriber
 * anyway (floodPublish); the mesh matters for forwarding.
 */
export async function waitGossipMesh(peers: Running[], topics: string[]): Promise<boolean> {
  try {
    // getMeshPeers is on the GossipSub class, not on its exported interface.
    const mesh = (p: Running, topic: string): number => (p.peer.node.pubsub as unknown as { getMeshPeers(topic: string): string[] }).getMeshPeers(topic).length
    const want = Math.min(peers.length - 1, 4)
    await eventually('gossipsub meshes formed', () => peers.every((p) => topics.every((t) => mesh(p, t) >= want)), 30_000, 50)
    return true
  } catch {
    progress('  warning: gossipsub meshes not complete after 30 s; going on (floodPublish reaches every subscriber)')
    return false
  }
}

/** Waits until no anti-entropy round has run on any peer for `calmMs` (rounds scheduled on connect start within 100 ms). */
export async function quiesce(peers: Running[], calmMs = 500): Promise<void> {
  let calmSince = performance.now()
  const deadline = calmSince + 120_000
  const rounds = () => peers.reduce((sum, p) => sum + p.peer.sync.counters.rounds, 0)
  let last = rounds()
  while (performance.now() - calmSince < calmMs) {
    if (performance.now() > deadline) throw new Error('anti-entropy did not go quiet within 120 s')
    const busy = peers.some((p) => p.peer.sync.status().peers.some((x) => x.state === 'syncing'))
    const now = rounds()
    if (busy || now !== last) calmSince = performance.now()
    last = now
    await sleep(25)
  }
}

export function rootsOf(r: Running, table: string): string {
  return r.peer.db.replication()
    .partitions(table)
    .map((p) => `${p.partition}:${p.rows}:${Buffer.from(p.digest).toString('hex')}`)
    .join(',')
}

/** One anti-entropy round from `from` with `to`, retried while a round between them is already running. */
export async function roundWith(from: Running, to: Running, peers: Running[]): Promise<{ stats: RoundStats; ms: number; bytes: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    await quiesce(peers, 300)
    const before = from.peer.sync.counters.bytesIn + from.peer.sync.counters.bytesOut
    const t0 = performance.now()
    const stats = await from.peer.sync.syncWith(to.peer.node.peerId)
    const ms = performance.now() - t0
    if (stats === null) continue
    return { stats, ms, bytes: from.peer.sync.counters.bytesIn + from.peer.sync.counters.bytesOut - before }
  }
  throw new Error(`syncWith(${to.name}) from ${from.name} kept finding a round running`)
}

/*
 * SystemAdapter: the one interface every replicated-data system in the peers benchmark implements
 * (Shoal, automerge-repo, Yjs, OrbitDB, GUN, …), so bench/peers/run.ts can drive them all with the
 * same workload and compare them.
 *
 * HOW TO ADD A SYSTEM
 *   Write bench/peers/baselines/<system>.ts exporting `createAdapter(): SystemAdapter`, add the
 *   packages it needs to bench/peers/baselines/package.json (its own install: never to Shoal's),
 *   and add the module name to SYSTEMS in config.ts. The runner imports each module lazily (from
 *   systems.ts' systemModule) and skips (with the printed reason) a system whose module is missing;
 *   a system whose import, start() or workload throws is reported as DNF.
 *
 * RULES FOR ADAPTERS
 *   - All peers run inside the benchmark's process (one Node process per system run; the runner
 *     spawns a fresh child process per system and run, so peak RSS is per system).
 *   - Networking only on 127.0.0.1 (no mDNS, no public bootstrap nodes, no relays outside the process).
 *     Peers must talk over real sockets (TCP/WebSocket), never in-memory channels: the runner counts
 *     bytes on the wire by patching net.Socket.prototype.write, which every Node TCP/WebSocket goes through.
 *   - Persistence on disk under the `dir` given to start() (one sub-folder per peer); the runner
 *     creates it and removes it afterwards.
 *   - Peer indexes are 0 … peers-1. Topology is the adapter's choice but must be the system's
 *     recommended one (e.g. a hub server for automerge-repo/y-websocket, bootstrap to peer 0 for libp2p);
 *     say which in `topology`.
 *   - insert()/update() resolve when the writes are committed locally on that peer (durable as far as
 *     the system's normal write path goes), NOT when replicated. Replication is measured by the
 *     runner polling count()/snapshot() on the other peers.
 *   - Writes are issued the way the system is meant to be used at volume (batched/chunked transactions
 *     if the system has them); say how in `notes`.
 *   - count()/snapshot() read the local replica of that peer only (no network).
 *   - snapshot() returns every live row as a plain object with exactly the StockRow fields, so
 *     snapshots of different peers (and the runner's expected state) can be compared with
 *     deep equality after sorting by id (the runner sorts; order does not matter).
 *   - stop() stops every peer, closes servers, sockets and databases, and must leave no timers running
 *     (the child process must be able to exit). Idempotent.
 */

/** One row of the retail `stock` table every workload uses. `id` is the primary key. */
export interface StockRow {
  id: string
  store: string
  sku: string
  qty: number
  shelf: string
}

/** A single- (or multi-) column update of an existing row: `values` are the columns that change. */
export interface StockChange {
  id: string
  values: Partial<Omit<StockRow, 'id'>>
}

export interface SystemAdapter {
  /** Short name printed in the results, e.g. 'shoal', 'automerge-repo', 'yjs'. */
  readonly name: string
  /** How peers connect, e.g. 'libp2p TCP, all bootstrap to peer 0' or 'WebSocket hub on peer 0'. */
  readonly topology?: string
  /** Anything a reader of the numbers should know (versions, persistence, batching, document layout). */
  readonly notes?: string
  /**
   * Starts `peers` peers in this process, persisting under `dir`, networked on 127.0.0.1, connected
   * to each other (resolve only when peers can replicate: connections established / initial sync done).
   */
  start(peers: number, dir: string): Promise<void>
  /** Inserts new rows on one peer; resolves when committed locally. */
  insert(peer: number, rows: readonly StockRow[]): Promise<void>
  /** Applies updates to existing rows on one peer; resolves when committed locally. */
  update(peer: number, changes: readonly StockChange[]): Promise<void>
  /** Number of live rows in that peer's local replica. */
  count(peer: number): Promise<number>
  /** Every live row of that peer's local replica as plain StockRow objects (any order). */
  snapshot(peer: number): Promise<StockRow[]>
  /**
   * Optional: a cheap digest of that peer's local replica, equal on two peers iff their states are
   * equal (e.g. Merkle roots). When present, the runner polls it (A vs B, once A's writes are
   * committed) instead of full snapshots, then confirms with one snapshot — for systems whose
   * snapshot() is too slow to poll without skewing the convergence time.
   */
  fingerprint?(peer: number): Promise<string>
  /**
   * Takes one peer offline (workload 5): closes its connections and its storage, keeping its folder;
   * the other peers keep running (if the peer is the hub/server, its clients lose their connection).
   * Resolves when the peer is fully closed.
   */
  stopPeer(peer: number): Promise<void>
  /**
   * Brings a peer taken offline by stopPeer() back: reopens its storage from its folder (no state
   * kept in memory across the restart) and reconnects it the way it first connected. Resolves once
   * it is connected and can replicate, NOT when it has caught up (the runner measures that).
   */
  startPeer(peer: number): Promise<void>
  /** Stops all peers and releases everything (sockets, timers, files). Idempotent. */
  stop(): Promise<void>
}

/** What a system module exports: a factory (preferred), or a class implementing SystemAdapter. */
export type AdapterFactory = () => SystemAdapter

/** Sorts a snapshot by id and normalizes field order, for deep-equality comparisons. */
export function canonical(rows: readonly StockRow[]): StockRow[] {
  return rows
    .map((r) => ({ id: String(r.id), store: String(r.store), sku: String(r.sku), qty: Number(r.qty), shelf: String(r.shelf) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** True when two snapshots hold the same rows (any order). */
export function sameRows(a: readonly StockRow[], b: readonly StockRow[]): boolean {
  if (a.length !== b.length) return false
  const x = canonical(a)
  const y = canonical(b)
  for (let i = 0; i < x.length; i++) {
    const p = x[i]!
    const q = y[i]!
    if (p.id !== q.id || p.store !== q.store || p.sku !== q.sku || p.qty !== q.qty || p.shelf !== q.shelf) return false
  }
  return true
}

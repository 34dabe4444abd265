import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { readApiFile } from '../../src/http/api-file.js'
import { ShoalClient } from '../../src/http/client.js'
import { loadOrCreatePeerKey } from '../../src/net/identity.js'
import type { TableSchema } from '../../src/index.js'
import type { Host } from './netns.js'

/* `shoal start` run inside a host's namespace, as an operator would, and an HTTP client for it. */

const BIN = resolve('bin/shoal.js')
const PORT = 4001
const HTTP_PORT = 7301
const START_DEADLINE_MS = 60_000

export const TABLES: TableSchema[] = [{ name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' } }]

export interface HostPeer {
  host: Host
  dir: string
  config: string
  log: string
  id: string
  address: string
  child: ChildProcess | null
  client: ShoalClient | null
}

/** Writes a host's config and data folder (its key made now, so others can name it in `bootstrap`). */
export async function preparePeer(host: Host, root: string, bootstrap: readonly HostPeer[], mdns: boolean, extra: Record<string, unknown> = {}): Promise<HostPeer> {
  const dir = join(root, host.name)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const id = peerIdFromPrivateKey(await loadOrCreatePeerKey(dir)).toString()
  const config = join(root, `${host.name}.json`)
  await writeFile(
    config,
    JSON.stringify({
      name: host.name,
      data: dir,
      listen: [`/ip4/${host.address}/tcp/${PORT}`],
      http: `${host.address}:${HTTP_PORT}`,
      mdns,
      bootstrap: bootstrap.map((p) => p.address),
      open: true,
      tables: TABLES,
      ...extra,
    }),
  )
  return { host, dir, config, log: join(root, `${host.name}.log`), id, address: `/ip4/${host.address}/tcp/${PORT}/p2p/${id}`, child: null, client: null }
}

/** Starts the peer in its namespace and waits for its API (api.json of this very process). */
export async function startPeer(p: HostPeer): Promise<void> {
  const out = createWriteStream(p.log, { flags: 'a' })
  const child = spawn('ip', ['netns', 'exec', p.host.ns, process.execPath, BIN, 'start', '--config', p.config], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.pipe(out)
  child.stderr.pipe(out)
  p.child = child
  const deadline = Date.now() + START_DEADLINE_MS
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${p.host.name}: shoal start exited with ${child.exitCode}; see ${p.log}`)
    const api = await readApiFile(p.dir)
    if (api !== null && api.pid === child.pid && api.token !== null) {
      p.client = new ShoalClient(api.url, { token: api.token, timeoutMs: 20_000 })
      return
    }
    if (Date.now() > deadline) throw new Error(`${p.host.name}: no API within ${START_DEADLINE_MS} ms; see ${p.log}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Stops the peer: SIGTERM (a clean stop) or SIGKILL (a crash); resolves once it has exited. */
export async function stopPeer(p: HostPeer, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  const child = p.child
  p.child = null
  p.client = null
  if (child === null || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill(signal)
  await exited
}

export function clientOf(p: HostPeer): ShoalClient {
  if (p.client === null) throw new Error(`${p.host.name} is not running`)
  return p.client
}

/** Rows of `stock` a peer holds (all partitions). */
export async function rowCount(p: HostPeer): Promise<number> {
  const status = await clientOf(p).status()
  return status.tables.find((t) => t.name === 'stock')?.rows ?? 0
}

async function metricsOf(p: HostPeer): Promise<string[]> {
  const api = await readApiFile(p.dir)
  if (api === null || api.token === null) throw new Error(`${p.host.name} has no API file`)
  return (await (await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${api.token}` } })).text()).split('\n')
}

/** The peer's traffic counters from /metrics: bytes and rows in and out, rounds. */
export async function trafficOf(p: HostPeer): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const line of await metricsOf(p)) {
    const m = /^shoal_(bytes_in|bytes_out|deltas_in|deltas_out|sync_rounds|sync_rounds_failed|rows_repaired)_total (\d+)/.exec(line)
    if (m !== null) out[m[1]!] = Number(m[2])
  }
  return out
}

/** Anti-entropy frame bytes by message type, in and out (shoal_sync_message_bytes_total), e.g. { range: '12 KiB in, 1 KiB out' }. */
export async function messageBytesOf(p: HostPeer): Promise<Record<string, string>> {
  const bytes: Record<string, { in: number; out: number }> = {}
  for (const line of await metricsOf(p)) {
    const m = /^shoal_sync_message_bytes_total\{direction="(in|out)",message="(\w+)"\} (\d+)/.exec(line)
    if (m !== null) (bytes[m[2]!] ??= { in: 0, out: 0 })[m[1] as 'in' | 'out'] = Number(m[3])
  }
  return Object.fromEntries(Object.entries(bytes).map(([k, v]) => [k, `${(v.in / 1024).toFixed(1)} KiB in, ${(v.out / 1024).toFixed(1)} KiB out`]))
}

/** Anti-entropy rounds that failed on a peer, as initiator or responder (shoal_sync_rounds_failed_total). */
export async function failedRounds(p: HostPeer): Promise<number> {
  return (await trafficOf(p)).sync_rounds_failed ?? 0
}

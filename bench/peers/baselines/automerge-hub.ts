/*
 * The automerge-repo topology both automerge-repo adapters use, as its docs recommend for Node: a Repo
 * per peer with NodeFSStorageAdapter in `<dir>/peer<i>`, peer 0 also the sync server (a `ws`
 * WebSocketServer on 127.0.0.1 in WebSocketServerAdapter), every other peer a WebSocketClientAdapter.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Repo } from '@automerge/automerge-repo'
import { WebSocketClientAdapter, WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { NodeFSStorageAdapter } from '@automerge/automerge-repo-storage-nodefs'
import { WebSocketServer } from 'ws'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface Hub {
  wss: WebSocketServer
  port: number
  repos: Repo[]
}

/** Starts the sync server and `peers` Repos (peer 0 serving, the others connecting to it). */
export async function startHub(peers: number, dir: string): Promise<Hub> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((ok, fail) => {
    wss.once('listening', ok)
    wss.once('error', fail)
  })
  const port = (wss.address() as { port: number }).port
  const repos: Repo[] = []
  for (let i = 0; i < peers; i++) {
    const folder = join(dir, `peer${i}`)
    await mkdir(folder, { recursive: true })
    const network = i === 0 ? new WebSocketServerAdapter(wss as never) : new WebSocketClientAdapter(`ws://127.0.0.1:${port}`)
    repos.push(new Repo({ network: [network], storage: new NodeFSStorageAdapter(folder) }))
  }
  return { wss, port, repos }
}

/**
 * A new client Repo on peer `peer`'s folder (a restart after shutdown), resolved once it is connected
 * to the sync server; shut down again if it does not connect within 30 s.
 */
export async function reconnectClient(dir: string, peer: number, port: number, system: string): Promise<Repo> {
  const repo = new Repo({ network: [new WebSocketClientAdapter(`ws://127.0.0.1:${port}`)], storage: new NodeFSStorageAdapter(join(dir, `peer${peer}`)) })
  const until = Date.now() + 30_000
  while (repo.peers.length === 0) {
    if (Date.now() > until) {
      await repo.shutdown().catch(() => undefined)
      throw new Error(`${system}: restarted peer ${peer} did not reconnect to the sync server`)
    }
    await sleep(10)
  }
  return repo
}

/** Shuts the running repos down (last first, the hub's last of all), then closes the hub's server and its clients. */
export async function stopHub(repos: Repo[], wss: WebSocketServer | null): Promise<void> {
  for (const r of repos.reverse()) await r.shutdown().catch(() => undefined)
  if (wss !== null) {
    for (const c of wss.clients) c.terminate()
    await new Promise<void>((r) => wss.close(() => r()))
  }
}

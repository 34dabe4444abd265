import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { BridgeStatus, PeerCounters, PeerStatus } from '../status.js'
import { quote, silentLogger, type Logger } from '../log.js'
import type { Shoal } from '../shoal.js'
import { httpUrl } from './address.js'
import { errorAnswer, HttpStartError } from './errors.js'
import { ShoalMetrics } from './metrics.js'
import type { Answer, Router } from './router.js'
import { shoalRoutes } from './routes.js'

export interface HttpApiInit {
  host: string
  port: number
  db: Shoal
  status: () => Promise<PeerStatus>
  counters: () => PeerCounters
  /** The SQL bridge's figures for /metrics (absent or null: no bridge). */
  bridge?: () => BridgeStatus | null
  logger?: Logger
}

export interface HttpApi {
  /** e.g. http://127.0.0.1:7001 */
  readonly url: string
  close(): Promise<void>
}

/** How long close() lets requests already running finish before cutting their connections. */
const CLOSE_GRACE_MS = 2000

function send(res: ServerResponse, answer: Answer, headers: Readonly<Record<string, string>> = {}): void {
  const status = answer.status ?? 200
  const [body, contentType] = 'json' in answer ? [JSON.stringify(answer.json) + '\n', 'application/json; charset=utf-8'] : [answer.text, answer.contentType]
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

async function handle(router: Router, req: IncomingMessage, res: ServerResponse, logger: Logger): Promise<void> {
  try {
    const { handler, params, query } = router.resolve(req.method ?? 'GET', req.url ?? '/')
    send(res, await handler({ req, params, query }))
  } catch (error) {
    const answer = errorAnswer(error)
    if (answer.internal) logger.error(`HTTP ${req.method} ${quote(req.url ?? '')}: ${error instanceof Error ? error.message : String(error)}`, { stack: error instanceof Error ? error.stack : undefined })
    if (res.headersSent) {
      res.destroy()
      return
    }
    send(res, { status: answer.status, json: answer.body }, answer.headers)
  }
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const address = `${host.includes(':') ? `[${host}]` : host}:${port}`
      const why =
        error.code === 'EADDRINUSE'
          ? 'the address is already in use (another peer or program listens there)'
          : error.code === 'EADDRNOTAVAIL'
            ? 'that host is not an address of this machine'
            : error.code === 'EACCES'
              ? 'permission denied (ports below 1024 need privileges)'
              : error.message
      reject(
        new HttpStartError(
          `cannot start the HTTP API on ${address}: ${why}; choose another address with --http HOST:PORT ` +
            `or the config's "http" field (port 0 picks a free port), or turn the API off with --no-http`,
          { cause: error },
        ),
      )
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve(server.address() as AddressInfo)
    })
  })
}

/**
 * Starts the local HTTP API of a peer (routes and error contract: README, "HTTP API"). Every
 * write answers only once it is durable, since the table methods resolve after the group commit.
 */
export async function startHttpApi(init: HttpApiInit): Promise<HttpApi> {
  const logger = init.logger ?? silentLogger
  const metrics = new ShoalMetrics(init.db, init.counters, init.bridge)
  const router = shoalRoutes({ db: init.db, status: init.status, metrics })
  const running = new Set<Promise<void>>()
  const server = createServer((req, res) => {
    const done = handle(router, req, res, logger).finally(() => running.delete(done))
    running.add(done)
  })
  const address = await listen(server, init.host, init.port)
  const url = httpUrl(init.host, address.port)
  let closing: Promise<void> | null = null

  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    // Idle keep-alive sockets would otherwise hold close() open until their timeout.
    server.closeIdleConnections()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.allSettled([...running]), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))])
    clearTimeout(timer)
    server.closeAllConnections()
    await closed
  }

  return {
    url,
    close: () => (closing ??= close()),
  }
}

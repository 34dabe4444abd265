import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { BridgeStatus, PeerCounters, PeerStatus } from '../status.js'
import { quote, silentLogger, type Logger } from '../log.js'
import type { Shoal } from '../shoal.js'
import { AccessPolicy, isJsonContentType } from './access.js'
import { httpUrl } from './address.js'
import { DEFAULT_HTTP_LIMITS, MIN_API_TOKEN_CHARS, type HttpLimits } from './constants.js'
import { errorAnswer, HttpError, HttpStartError } from './errors.js'
import { ShoalMetrics } from './metrics.js'
import type { Answer, Router } from './router.js'
import { shoalRoutes, type MeshDocumentSink } from './routes.js'
import { addUiRoutes, type UiInit } from './ui.js'

export interface HttpApiInit {
  host: string
  port: number
  db: Shoal
  status: () => Promise<PeerStatus>
  counters: () => PeerCounters
  /** The SQL bridge's figures for /metrics (absent or null: no bridge). */
  bridge?: () => BridgeStatus | null
  /** Takes signed mesh documents (rules, revocations, admissions) into a private mesh peer; absent: an open mesh. */
  meshDocuments?: MeshDocumentSink
  logger?: Logger
  /** The bearer token every request must carry (createApiToken(); at least MIN_API_TOKEN_CHARS). */
  token: string
  /** More `Host` values to accept besides the API's own address, as 'name:port'. */
  hosts?: readonly string[]
  /** Web origins allowed to call the API from a browser (default none). */
  origins?: readonly string[]
  /** Serve GET /metrics without the token (default false). */
  metricsPublic?: boolean
  /** Timeouts and the connection cap (defaults: DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpLimits>
  /** Serve the web app at /ui/ (config "ui"). */
  ui?: UiInit
}

export interface HttpApi {
  /** e.g. http://127.0.0.1:7001 */
  readonly url: string
  /**
   * Resolves once the requests being handled now have finished. A handler may outlive its
   * connection (a client that sent a whole request and then junk is cut off by the parser while
   * the request runs), so a closed socket does not say the server is done.
   */
  idle(): Promise<void>
  close(): Promise<void>
}

/** How long close() lets requests already running finish before cutting their connections. */
const CLOSE_GRACE_MS = 2000

function send(res: ServerResponse, answer: Answer, headers: Readonly<Record<string, string>> = {}): void {
  const status = answer.status ?? 200
  const [body, contentType] = 'json' in answer ? [JSON.stringify(answer.json) + '\n', 'application/json; charset=utf-8'] : [answer.text, answer.contentType]
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length
  res.writeHead(status, { 'cache-control': 'no-store', ...headers, ...answer.headers, 'content-type': contentType, 'content-length': length })
  res.end(body)
}

/** Answers of the access rules (token, Host, Origin, content type). */
const REFUSALS = new Set([401, 403, 415])

/** Methods whose requests carry a body the API reads: it must be JSON. */
const BODY_METHODS = new Set(['PUT', 'POST', 'PATCH'])

async function handle(router: Router, access: AccessPolicy, req: IncomingMessage, res: ServerResponse, logger: Logger): Promise<void> {
  let cors: Readonly<Record<string, string>> = {}
  try {
    const method = req.method ?? 'GET'
    const target = req.url ?? '/'
    const admission = access.admit(method, target, req.headers)
    cors = admission.headers
    if (admission.preflight) {
      res.writeHead(204, { ...cors, 'content-length': 0 })
      res.end()
      return
    }
    const { handler, params, query } = router.resolve(method, target)
    if (BODY_METHODS.has(method) && !isJsonContentType(req.headers['content-type'])) {
      const got = req.headers['content-type']
      throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `${method} bodies must be JSON sent as 'Content-Type: application/json' (got ${got === undefined ? 'none' : JSON.stringify(got)})`, { connection: 'close' })
    }
    send(res, await handler({ req, params, query }), cors)
  } catch (error) {
    const answer = errorAnswer(error)
    if (answer.internal) logger.error(`HTTP ${req.method} ${quote(req.url ?? '')}: ${error instanceof Error ? error.message : String(error)}`, { stack: error instanceof Error ? error.stack : undefined })
    // Debug only: any web page can make these, as often as it likes.
    else if (REFUSALS.has(answer.status)) logger.debug('HTTP request refused', { status: answer.status, code: answer.body.error.code, method: req.method, host: req.headers.host, origin: req.headers.origin })
    if (res.headersSent) {
      res.destroy()
      return
    }
    send(res, { status: answer.status, json: answer.body }, { ...cors, ...answer.headers })
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
  if (typeof init.token !== 'string' || init.token.length < MIN_API_TOKEN_CHARS) {
    throw new HttpStartError(`the HTTP API token must be a string of at least ${MIN_API_TOKEN_CHARS} characters (128 bits); make one with createApiToken()`)
  }
  const limits = { ...DEFAULT_HTTP_LIMITS, ...init.limits }
  const metrics = new ShoalMetrics(init.db, init.counters, init.bridge)
  const router = shoalRoutes({ db: init.db, status: init.status, metrics, ...(init.meshDocuments === undefined ? {} : { meshDocuments: init.meshDocuments }) })
  if (init.ui !== undefined) await addUiRoutes(router, init.ui)
  const running = new Set<Promise<void>>()
  let access: AccessPolicy | null = null
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // A request without Host is refused by the access policy, with the API's error body.
      requireHostHeader: false,
    },
    (req, res) => {
      const policy = access
      if (policy === null) {
        // Not reachable in practice: the policy is set when the server starts listening.
        res.writeHead(503, { connection: 'close' }).end()
        return
      }
      const done = handle(router, policy, req, res, logger).finally(() => running.delete(done))
      running.add(done)
    },
  )
  server.maxConnections = limits.maxConnections
  // Set when listening (the port may have been 0), before any connection is accepted.
  server.once('listening', () => {
    access = new AccessPolicy({
      token: init.token,
      listenHost: init.host,
      port: (server.address() as AddressInfo).port,
      ...(init.hosts === undefined ? {} : { hosts: init.hosts }),
      ...(init.origins === undefined ? {} : { origins: init.origins }),
      ...(init.metricsPublic === undefined ? {} : { metricsPublic: init.metricsPublic }),
      uiPublic: init.ui !== undefined,
    })
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
    idle: async () => {
      while (running.size > 0) await Promise.allSettled([...running])
    },
    close: () => (closing ??= close()),
  }
}

import { request, type IncomingHttpHeaders } from 'node:http'
import { connect, type Socket } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AccessPolicy } from '../../src/http/access.js'
import { HttpStartError } from '../../src/http/errors.js'
import { startHttpApi, type HttpApi, type HttpApiInit } from '../../src/http/server.js'
import { createApiToken } from '../../src/http/token.js'
import { callbackLogger, type LogFields } from '../../src/log.js'
import type { PeerCounters, PeerStatus } from '../../src/status.js'
import { Shoal } from '../../src/shoal.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * The HTTP API against hostile clients: web pages (simple cross-site requests, DNS rebinding),
 * other local programs without the token, and clients that hold connections open. Every request
 * here is raw node:http, so Host and Origin can be set as a browser or an attacker would.
 */

const TOKEN = createApiToken()
const counters: PeerCounters = { deltasIn: 0, deltasOut: 0, bytesIn: 0, bytesOut: 0, syncRounds: 0, syncRoundsFailed: 0, rowsRepaired: 0, syncPartitionsByFeed: 0, syncPartitionsByTree: 0, refused: 0, refusedByReason: {}, connectedPeers: 0, syncBytesByMessage: {}, syncByPeer: [] }

let db: Shoal
let api: HttpApi
let port: number
const extra: HttpApi[] = []

async function status(): Promise<PeerStatus> {
  return { ...(await db.status()), name: 'access', peerId: '12D3KooWaccess', addresses: [], connectedPeers: [], http: api.url, sync: { rounds: 0, failedRounds: 0, rowsRepaired: 0, partitionsByFeed: 0, partitionsByTree: 0, peers: [], loading: [] } }
}

const logged: Array<{ level: string; message: string; fields: LogFields }> = []
const logger = callbackLogger((level, message, fields) => logged.push({ level, message, fields }))

async function serve(init: Partial<HttpApiInit> = {}): Promise<HttpApi> {
  const started = await startHttpApi({ token: TOKEN, host: '127.0.0.1', port: 0, db, status, counters: () => counters, logger, ...init })
  extra.push(started)
  return started
}

interface RawAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  /** The error code, when the body is the API's error contract. */
  code: string | undefined
}

interface RawRequest {
  method?: string
  path: string
  /** Sent as given; `host` replaces the one node would set (127.0.0.1:PORT); null sends none. */
  headers?: Record<string, string>
  host?: string | null
  body?: string
  port?: number
}

/** One request on its own connection to 127.0.0.1, with exactly the headers given. */
function raw(r: RawRequest): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...r.headers }
    if (r.host !== undefined && r.host !== null) headers.host = r.host
    if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body))
    const req = request({ host: '127.0.0.1', port: r.port ?? port, method: r.method ?? 'GET', path: r.path, headers, agent: false, setHost: r.host !== null }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => {
        let code: string | undefined
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code
        } catch {
          code = undefined
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, code })
      })
    })
    req.on('error', reject)
    req.end(r.body)
  })
}

const bearer = { authorization: `Bearer ${TOKEN}` }
const json = { 'content-type': 'application/json' }

async function qty(key: string): Promise<unknown> {
  return (await db.table('stock').get(key))?.qty
}

/** Polls until `condition` holds, failing after a generous deadline (never a fixed sleep). */
async function until(condition: () => boolean | Promise<boolean>, what: string, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${deadlineMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

beforeEach(async () => {
  logged.length = 0
  db = await Shoal.open({ dir: await tempDir() })
  await db.defineTable({ name: 'stock', primaryKey: 'id', columns: { id: 'string', qty: 'counter', notes: 'text' } })
  await db.table('stock').put('a', { qty: 5 })
  api = await serve()
  port = Number(new URL(api.url).port)
})

afterEach(async () => {
  for (const a of extra.splice(0)) await a.close()
  await db.close()
})

describe('HTTP API token', () => {
  it('refuses a missing, malformed or wrong token with 401, and serves the right one', async () => {
    const missing = await raw({ path: '/v1/tables/stock/rows/a' })
    expect([missing.status, missing.code]).toEqual([401, 'UNAUTHORIZED'])
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="shoal"')
    expect(JSON.parse(missing.body).error.message).toMatch(/Authorization: Bearer <token>.*api\.json/)
    expect(missing.body).not.toContain(TOKEN)
    for (const authorization of [`Basic ${TOKEN}`, 'Bearer', `Bearer ${TOKEN} extra`, `Bearer ${createApiToken()}`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`]) {
      const refused = await raw({ path: '/v1/tables/stock/rows/a', headers: { authorization } })
      expect({ authorization, status: refused.status, code: refused.code }).toEqual({ authorization, status: 401, code: 'UNAUTHORIZED' })
    }
    const ok = await raw({ path: '/v1/tables/stock/rows/a', headers: bearer })
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toEqual({ key: 'a', row: { id: 'a', qty: 5, notes: '' } })
    // The scheme name is case-insensitive (RFC 7235).
    expect((await raw({ path: '/v1/status', headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200)
  })

  it('checks the token before anything else about the request: no write, no route discovery', async () => {
    const write = await raw({ method: 'POST', path: '/v1/tables/stock/rows/a/increment', headers: json, body: '{"column": "qty", "by": -1000}' })
    expect([write.status, write.code]).toEqual([401, 'UNAUTHORIZED'])
    expect(write.headers.connection).toBe('close')
    expect((await raw({ path: '/v1/nothing' })).status).toBe(401)
    expect(await qty('a')).toBe(5)
  })

  it('refuses to start with a token shorter than 128 bits', async () => {
    await expect(serve({ token: 'short' })).rejects.toBeInstanceOf(HttpStartError)
    await expect(serve({ token: 'x'.repeat(21) })).rejects.toThrow(/at least 22 characters/)
  })
})

describe('HTTP API Host check (DNS rebinding)', () => {
  it('accepts the API’s own address in each form and a configured name, refuses any other', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      expect({ host, status: (await raw({ path: '/v1/status', host, headers: bearer })).status }).toEqual({ host, status: 200 })
    }
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${port + 1}`, '127.0.0.1', `localhost.evil.example:${port}`, `shoal.local:${port}`]) {
      const refused = await raw({ path: '/v1/status', host, headers: bearer })
      expect({ host, status: refused.status, code: refused.code }).toEqual({ host, status: 403, code: 'HOST_REFUSED' })
    }
    const none = await raw({ path: '/v1/status', host: null, headers: bearer })
    expect([none.status, none.code]).toEqual([403, 'HOST_REFUSED'])

    const named = await serve({ hosts: ['shoal.local:7001', 'Box.LAN:8080'] })
    const namedPort = Number(new URL(named.url).port)
    for (const host of ['shoal.local:7001', 'box.lan:8080', `127.0.0.1:${namedPort}`]) {
      expect({ host, status: (await raw({ port: namedPort, path: '/v1/status', host, headers: bearer })).status }).toEqual({ host, status: 200 })
    }
    const wrongPort = await raw({ port: namedPort, path: '/v1/status', host: 'shoal.local:7002', headers: bearer })
    expect(wrongPort.status).toBe(403)
    expect(JSON.parse(wrongPort.body).error.message).toMatch(/httpHosts/)
  })

  it('admits this machine’s addresses when listening on every interface, and a bare host on port 80', () => {
    const wildcard = new AccessPolicy({ token: TOKEN, listenHost: '0.0.0.0', port: 7001, localAddresses: ['127.0.0.1', '192.168.1.5', 'fe80::1'] })
    expect([...wildcard.hosts].sort()).toEqual(['127.0.0.1:7001', '192.168.1.5:7001', '[::1]:7001', '[fe80::1]:7001', 'localhost:7001'])
    const lan = new AccessPolicy({ token: TOKEN, listenHost: '192.168.1.5', port: 80 })
    expect(lan.hosts).toContain('192.168.1.5')
    expect(lan.hosts).toContain('192.168.1.5:80')
    expect(lan.hosts).not.toContain('192.168.1.6')
    expect(() => new AccessPolicy({ token: TOKEN, listenHost: '127.0.0.1', port: 1, hosts: ['no-port'] })).toThrow(/HOST:PORT/)
    expect(() => new AccessPolicy({ token: TOKEN, listenHost: '127.0.0.1', port: 1, origins: ['https://app.example/path'] })).toThrow(/web origin/)
  })
})

describe('HTTP API Origin check and CORS', () => {
  it('serves requests without Origin (CLI, curl), refuses any origin not on the allow-list', async () => {
    expect((await raw({ path: '/v1/status', headers: bearer })).status).toBe(200)
    for (const origin of ['http://evil.example', `http://127.0.0.1:${port}`, 'null', 'https://app.example']) {
      const refused = await raw({ path: '/v1/status', headers: { ...bearer, origin } })
      expect({ origin, status: refused.status, code: refused.code }).toEqual({ origin, status: 403, code: 'ORIGIN_REFUSED' })
      expect(refused.headers['access-control-allow-origin']).toBeUndefined()
    }
  })

  it('lets an allowed origin through CORS: preflight without the token, then requests with it', async () => {
    const app = await serve({ origins: ['https://app.example', 'http://localhost:5173/'] })
    const appPort = Number(new URL(app.url).port)
    const preflight = await raw({
      port: appPort,
      method: 'OPTIONS',
      path: '/v1/tables/stock/rows/a/increment',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-methods': 'GET, PUT, POST, DELETE',
      'access-control-allow-headers': 'authorization, content-type',
      vary: 'Origin',
    })
    const write = await raw({ port: appPort, method: 'POST', path: '/v1/tables/stock/rows/a/increment', headers: { ...bearer, ...json, origin: 'http://localhost:5173' }, body: '{"column": "qty", "by": 2}' })
    expect(write.status).toBe(200)
    expect(write.headers['access-control-allow-origin']).toBe('http://localhost:5173')
    expect(await qty('a')).toBe(7)
    // The page can read why a request failed, but still needs the token.
    const noToken = await raw({ port: appPort, path: '/v1/status', headers: { origin: 'https://app.example' } })
    expect([noToken.status, noToken.headers['access-control-allow-origin']]).toEqual([401, 'https://app.example'])
    const evil = await raw({ port: appPort, method: 'OPTIONS', path: '/v1/status', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } })
    expect(evil.status).toBe(403)
  })
})

describe('HTTP API content type', () => {
  it('refuses writes that are not application/json with 415, before reading them', async () => {
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp', undefined]) {
      const headers = type === undefined ? bearer : { ...bearer, 'content-type': type }
      for (const [method, path, body] of [
        ['POST', '/v1/tables/stock/rows/a/increment', '{"column": "qty", "by": -1000}'],
        ['PUT', '/v1/tables/stock/rows/a', '{"qty": -995}'],
        ['PUT', '/v1/tables/evil', '{"primaryKey": "id", "columns": {"id": "string"}}'],
        ['POST', '/v1/tables/stock/rows/a/text', '{"column": "notes", "index": 0, "insert": "pwned"}'],
      ] as const) {
        const refused = await raw({ method, path, headers, body })
        expect({ type, path, status: refused.status, code: refused.code }).toEqual({ type, path, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' })
      }
    }
    expect(await db.table('stock').get('a')).toEqual({ id: 'a', qty: 5, notes: '' })
    expect((await db.status()).tables.map((t) => t.name)).toEqual(['stock'])
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON']) {
      const ok = await raw({ method: 'POST', path: '/v1/tables/stock/rows/a/increment', headers: { ...bearer, 'content-type': type }, body: '{"column": "qty"}' })
      expect({ type, status: ok.status }).toEqual({ type, status: 200 })
    }
    expect(await qty('a')).toBe(8)
    // Reads and deletes carry no body: no content type needed.
    expect((await raw({ method: 'DELETE', path: '/v1/tables/stock/rows/a', headers: bearer })).status).toBe(200)
  })

  it('does not let the issue’s cross-site request change data, nor any part of it', async () => {
    // The request from the issue: a "simple" cross-site POST a web page (or a DNS-rebinding one)
    // can send, which used to answer 200 and take qty from 5 to -995.
    const evil = { method: 'POST', path: '/v1/tables/stock/rows/a/increment', body: '{"column": "qty", "by": -1000}' }
    const page = { 'content-type': 'text/plain', origin: 'http://evil.example' }
    const asIssued = await raw({ ...evil, host: `evil.example:${port}`, headers: page })
    expect([asIssued.status, asIssued.code]).toEqual([403, 'HOST_REFUSED'])
    // Sent to 127.0.0.1 directly (a page cannot set Host; it is the address it fetched).
    expect((await raw({ ...evil, headers: page })).code).toBe('ORIGIN_REFUSED')
    // From a local program without the token.
    expect((await raw({ ...evil, headers: { 'content-type': 'text/plain' } })).code).toBe('UNAUTHORIZED')
    expect((await raw({ ...evil, headers: json })).code).toBe('UNAUTHORIZED')
    // Even with the token, text/plain is no write.
    expect((await raw({ ...evil, headers: { ...bearer, 'content-type': 'text/plain' } })).code).toBe('UNSUPPORTED_MEDIA_TYPE')
    expect(await qty('a')).toBe(5)
    // Each refusal is logged at debug level, the client's Host and Origin in fields.
    const refusals = logged.filter((l) => l.message === 'HTTP request refused')
    expect(refusals.map((l) => [l.level, l.fields.code])).toEqual([
      ['debug', 'HOST_REFUSED'],
      ['debug', 'ORIGIN_REFUSED'],
      ['debug', 'UNAUTHORIZED'],
      ['debug', 'UNAUTHORIZED'],
      ['debug', 'UNSUPPORTED_MEDIA_TYPE'],
    ])
    expect(refusals[0]!.fields).toMatchObject({ status: 403, method: 'POST', host: `evil.example:${port}`, origin: 'http://evil.example' })
  })
})

describe('HTTP API metrics', () => {
  it('needs the token unless metricsPublic, which opens /metrics and nothing else', async () => {
    expect((await raw({ path: '/metrics' })).code).toBe('UNAUTHORIZED')
    const scraped = await raw({ path: '/metrics', headers: bearer })
    expect(scraped.status).toBe(200)
    expect(scraped.body).toMatch(/^shoal_rows\{table="stock",partition=""\} 1$/m)

    const open = await serve({ metricsPublic: true })
    const openPort = Number(new URL(open.url).port)
    const anonymous = await raw({ port: openPort, path: '/metrics' })
    expect(anonymous.status).toBe(200)
    expect(anonymous.body).toMatch(/shoal_rows/)
    expect((await raw({ port: openPort, path: '/metrics?x=1' })).code).toBe('VALUE_INVALID')
    expect((await raw({ port: openPort, path: '/v1/status' })).code).toBe('UNAUTHORIZED')
    expect((await raw({ port: openPort, path: '/v1/tables/stock/rows' })).code).toBe('UNAUTHORIZED')
    expect((await raw({ port: openPort, method: 'DELETE', path: '/metrics' })).code).toBe('UNAUTHORIZED')
    // Host and Origin rules still hold for it.
    expect((await raw({ port: openPort, path: '/metrics', host: `evil.example:${openPort}` })).code).toBe('HOST_REFUSED')
    expect((await raw({ port: openPort, path: '/metrics', headers: { origin: 'http://evil.example' } })).code).toBe('ORIGIN_REFUSED')
  })
})

/** A raw TCP connection to the API; resolves once connected. */
function openSocket(to = port): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(to, '127.0.0.1', () => resolve(socket))
    socket.on('error', reject)
  })
}

/** Collects what a socket receives and whether it was closed. */
function watch(socket: Socket): { received: () => string; closed: () => boolean } {
  let received = ''
  let closed = false
  socket.on('data', (c: Buffer) => (received += c.toString()))
  socket.on('close', () => (closed = true))
  socket.on('error', () => undefined)
  return { received: () => received, closed: () => closed }
}

describe('HTTP API connection limits', () => {
  it('cuts off a client that never finishes its headers (slow-loris), or never sends any', async () => {
    const short = await serve({ limits: { headersTimeoutMs: 300, requestTimeoutMs: 600, timeoutCheckIntervalMs: 50 } })
    const shortPort = Number(new URL(short.url).port)
    const loris = await openSocket(shortPort)
    const lorisSeen = watch(loris)
    loris.write(`GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:${shortPort}\r\nAuthorization: Bearer ${TOKEN}\r\n`)
    // Keeps trickling header lines, as slow-loris does, until the server hangs up.
    const trickle = setInterval(() => {
      if (!loris.destroyed) loris.write('X-Padding: 1\r\n')
    }, 50)
    try {
      await until(lorisSeen.closed, 'slow-loris connection closed')
    } finally {
      clearInterval(trickle)
    }
    expect(lorisSeen.received()).toMatch(/^HTTP\/1\.1 408/)

    const silent = await openSocket(shortPort)
    const silentSeen = watch(silent)
    await until(silentSeen.closed, 'silent connection closed')

    // Headers sent, body promised but never finished: the request timeout.
    const slowBody = await openSocket(shortPort)
    const slowSeen = watch(slowBody)
    slowBody.write(`POST /v1/tables/stock/rows/a/increment HTTP/1.1\r\nHost: 127.0.0.1:${shortPort}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"column"`)
    await until(slowSeen.closed, 'slow-body connection closed')
    expect(await qty('a')).toBe(5)

    // The API still serves everyone else.
    expect((await raw({ port: shortPort, path: '/v1/status', headers: bearer })).status).toBe(200)
  })

  it('caps open connections: one more is closed at once, and served again once one ends', async () => {
    const capped = await serve({ limits: { maxConnections: 2 } })
    const cappedPort = Number(new URL(capped.url).port)
    const held = [await openSocket(cappedPort), await openSocket(cappedPort)]
    const over = await openSocket(cappedPort).catch(() => null)
    if (over !== null) {
      const seen = watch(over)
      over.write(`GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:${cappedPort}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)
      await until(seen.closed, 'connection over the cap closed')
      expect(seen.received()).toBe('')
    }
    await expect(raw({ port: cappedPort, path: '/v1/status', headers: bearer })).rejects.toThrow()
    held[0]!.destroy()
    await until(async () => (await raw({ port: cappedPort, path: '/v1/status', headers: bearer }).catch(() => null))?.status === 200, 'served again after a connection ended')
    held[1]!.destroy()
  })
})

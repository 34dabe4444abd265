import fc from 'fast-check'
import { connect } from 'node:net'
import { callbackLogger } from '../../src/log.js'
import { startHttpApi } from '../../src/http/server.js'
import { createApiToken } from '../../src/http/token.js'
import type { Rng } from '../../src/sim/core/rng.js'
import type { PeerCounters, PeerStatus } from '../../src/status.js'
import { Crash, type FuzzTarget, type TargetSession, type Verdict } from '../harness.js'
import { concat, mutateBytes, mutateText, mutateValue } from '../mutate.js'
import { checkProblems, fingerprint, KEYS, openReference, REFERENCE_TABLES, snapshot, STORES, referenceKey } from '../reference.js'

/*
 * The local HTTP API, running for real (startHttpApi on 127.0.0.1, port chosen by the OS, with a
 * bearer token) over the reference store. Requests are written raw on a TCP socket, so method,
 * target, headers, framing and body can all be wrong. Mostly-valid requests (every route, the
 * right token and content type, JSON bodies that fit the schema) are generated with fast-check and
 * then mutated: methods, percent-encoding, query parameters, missing or wrong Host, token,
 * Origin, Content-Type, Content-Length and Transfer-Encoding, huge headers, and bodies mutated as
 * JSON values or as text (deep nesting, 1e999, __proto__). Requests ask the server to close after
 * answering; one it cannot answer (an incomplete body) is half-closed after a quiet spell.
 * Refused: any 4xx, or the connection closed without an answer. Crash: a 5xx, anything the server
 * logs as an internal error, or no answer and no close within the deadline.
 */

interface Request {
  method: string
  target: string
  headers: Array<[string, string]>
  body: string | null
}

interface Input {
  request: Request
  /** Raw bytes when a byte-level mutation was applied to the serialised request. */
  raw: Uint8Array | null
}

const ANSWER_DEADLINE_MS = 8_000
const MUTATING = new Set(['PUT', 'POST', 'DELETE'])
/** What Node's HTTP parser answers to bytes it cannot parse, before closing (no body, no content type). */
const PARSER_REFUSAL = /HTTP\/1\.1 4\d\d [^\r]*\r\nConnection: close\r\n\r\n$/

function serialise(r: Request): Uint8Array {
  const head = `${r.method} ${r.target} HTTP/1.1\r\n${r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
  return concat(Buffer.from(head, 'latin1'), r.body === null ? new Uint8Array(0) : Buffer.from(r.body, 'utf8'))
}

const enc = encodeURIComponent

function keyFor(table: string, rng: { store: string; key: string }): string {
  return referenceKey(table, rng.store, rng.key)
}

const rowArb = fc.record({ table: fc.constantFrom(...REFERENCE_TABLES.map((t) => t.name)), store: fc.constantFrom(...STORES), key: fc.constantFrom(...KEYS, 'new1', 'new2') })

/** Valid requests of every route. */
function requestArb(): fc.Arbitrary<{ method: string; path: string; body: unknown }> {
  return fc.oneof(
    fc.constant({ method: 'GET', path: '/v1/status', body: undefined }),
    fc.constant({ method: 'GET', path: '/metrics', body: undefined }),
    fc.record({ r: rowArb, limit: fc.option(fc.integer({ min: 1, max: 1000 })), partition: fc.option(fc.constantFrom(...STORES)) }).map(({ r, limit, partition }) => {
      const q = [limit === null ? '' : `limit=${limit}`, partition === null || r.table === 'catalog' ? '' : `partition=${partition}`].filter((s) => s !== '').join('&')
      return { method: 'GET', path: `/v1/tables/${r.table}/rows${q === '' ? '' : '?' + q}`, body: undefined }
    }),
    rowArb.map((r) => ({ method: 'GET', path: `/v1/tables/${r.table}/rows/${enc(keyFor(r.table, r))}`, body: undefined })),
    fc.record({ r: rowArb, shelf: fc.string({ maxLength: 10 }), price: fc.double({ noNaN: true, noDefaultInfinity: true }), amount: fc.integer() }).map(({ r, shelf, price, amount }) => ({
      method: 'PUT',
      path: `/v1/tables/${r.table}/rows/${enc(keyFor(r.table, r))}`,
      body: r.table === 'stock' ? { store: r.store, shelf, price } : r.table === 'sales' ? { store: r.store, amount, paid: true } : r.table === 'shelves' ? { store: r.store, label: shelf, width: price } : { name: shelf, price },
    })),
    rowArb.map((r) => ({ method: 'DELETE', path: `/v1/tables/${r.table}/rows/${enc(keyFor(r.table, r))}`, body: undefined })),
    fc.record({ r: rowArb, by: fc.integer({ min: -100, max: 100 }) }).map(({ r, by }) => ({
      method: 'POST',
      path: `/v1/tables/${r.table}/rows/${enc(keyFor(r.table, r))}/increment${r.table === 'catalog' ? '' : `?partition=${r.store}`}`,
      body: { column: r.table === 'stock' ? 'qty' : r.table === 'shelves' ? 'facings' : 'units', by },
    })),
    fc.record({ r: rowArb, index: fc.nat(5), del: fc.nat(3), insert: fc.string({ maxLength: 8 }) }).map(({ r, index, del, insert }) => ({
      method: 'POST',
      path: `/v1/tables/${r.table}/rows/${enc(keyFor(r.table, r))}/text`,
      body: { column: r.table === 'catalog' ? 'description' : 'note', index, delete: del, insert },
    })),
    fc.record({ name: fc.constantFrom('stock', 'extra', 'other'), col: fc.constantFrom('more', 'flag', 'qty') }).map(({ name, col }) => ({
      method: 'PUT',
      path: `/v1/tables/${name}`,
      body: name === 'stock' ? { ...REFERENCE_TABLES[0], columns: { ...REFERENCE_TABLES[0]!.columns, [col]: 'string' } } : { primaryKey: 'id', columns: { id: 'string', [col]: 'number' } },
    })),
  )
}

const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'CONNECT', 'get', 'PURGE', 'G\u0000T', 'X'.repeat(300), '']
const TARGET_BITS = ['%', '%zz', '%00', '%2F', '/..', '//', '?', '&', '?partition=1&partition=2', '?x=1', '#frag', '*', 'http://evil.example', '\u00e9', ' ', '%C0%AF', '%F0%9F%90%9F', '/v1/tables/__proto__', '?after=%FF%FE', '?limit=1e3', '?limit=-1', '?after=AAAA']

function mutateRequest(rng: Rng, r: Request, token: string, port: number): Request {
  const headers = r.headers.map(([k, v]) => [k, v] as [string, string])
  const out: Request = { ...r, headers }
  const setHeader = (name: string, value: string | null): void => {
    const i = headers.findIndex(([k]) => k.toLowerCase() === name)
    if (i >= 0) headers.splice(i, 1)
    if (value !== null) headers.splice(rng.int(0, headers.length), 0, [name, value])
  }
  switch (rng.int(0, 9)) {
    case 0:
      out.method = rng.pick(METHODS)
      break
    case 1: {
      const at = rng.int(0, r.target.length)
      out.target = rng.chance(0.2) ? rng.pick(['', '/', '*', 'x'.repeat(rng.int(100, 20_000)), 'http://127.0.0.1/v1/status']) : r.target.slice(0, at) + rng.pick(TARGET_BITS) + r.target.slice(at)
      break
    }
    case 2:
      setHeader('host', rng.pick([null, '', 'evil.example', `127.0.0.1:${port + 1}`, `LOCALHOST:${port}`, `[::1]:${port}`, `127.0.0.1:${port}, evil`, 'x'.repeat(200)]))
      break
    case 3:
      setHeader('authorization', rng.pick([null, '', 'Bearer', `Bearer ${token}x`, `bearer ${token}`, `Basic ${token}`, `Bearer  ${token}  `, `Bearer ${token.slice(1)}`, 'Bearer ' + 'a'.repeat(10_000)]))
      break
    case 4:
      setHeader('origin', rng.pick(['https://evil.example', 'null', '', `http://127.0.0.1:${port}`]))
      if (rng.chance(0.5)) {
        out.method = 'OPTIONS'
        setHeader('access-control-request-method', 'PUT')
      }
      break
    case 5:
      setHeader('content-type', rng.pick([null, 'text/plain', 'application/json; charset=latin1', 'APPLICATION/JSON', 'application/jsonx', 'multipart/form-data; boundary=x', ';', 'application/json;;']))
      break
    case 6: {
      const length = Buffer.byteLength(r.body ?? '')
      const choice = rng.int(0, 6)
      if (choice === 0) setHeader('content-length', String(Math.max(0, length - rng.int(1, 5))))
      else if (choice === 1) setHeader('content-length', rng.pick(['-1', 'abc', '1e3', '99999999999999999999', String(length) + ', ' + String(length), '0x10']))
      else if (choice === 2) headers.push(['content-length', String(length + 1)])
      else if (choice === 3) {
        setHeader('content-length', null)
        setHeader('transfer-encoding', 'chunked')
        out.body = rng.chance(0.5) ? `${Buffer.byteLength(r.body ?? '').toString(16)}\r\n${r.body ?? ''}\r\n0\r\n\r\n` : `zz\r\n${r.body ?? ''}\r\n`
      } else if (choice === 4) setHeader('transfer-encoding', rng.pick(['chunked', 'gzip', 'chunked, identity']))
      else if (choice === 5) setHeader('content-length', String(length + rng.int(1, 100)))
      else setHeader('expect', '100-continue')
      break
    }
    case 7:
      if (rng.chance(0.5)) headers.push([rng.pick(['x-big', 'cookie', 'user-agent']), 'v'.repeat(rng.int(1000, 20_000))])
      else for (let k = rng.int(50, 300); k > 0; k--) headers.push([`x-h${k}`, 'v'])
      break
    default: {
      // The body, as a JSON value or as text.
      let body = r.body ?? '{}'
      if (rng.chance(0.5)) {
        try {
          let value = JSON.parse(body) as unknown
          for (let k = rng.int(1, 3); k > 0; k--) value = mutateValue(rng, value, ['store', 'qty', 'note', 'column', 'by', 'index', 'delete', 'insert', 'primaryKey', 'columns', 'counter', 'text', ...STORES])
          body = JSON.stringify(value) ?? 'null'
        } catch {
          body = mutateText(rng, body)
        }
      } else {
        for (let k = rng.int(1, 3); k > 0; k--) body = mutateText(rng, body)
      }
      out.body = body
      setHeader('content-length', String(Buffer.byteLength(body)))
    }
  }
  return out
}

function show(input: unknown): string {
  const i = input as Input
  const bytes = i.raw ?? serialise(i.request)
  const text = Buffer.from(bytes).toString('latin1')
  return JSON.stringify(text.length > 700 ? text.slice(0, 700) + '…' : text) + ` (${bytes.length} B)`
}

/**
 * How long a client stays quiet before it half-closes: a request the server can answer is answered
 * in far less; one it cannot (a body shorter than its Content-Length) would otherwise wait for the
 * server's request timeout. Half-closing at once instead would make the server drop answers.
 */
const QUIET_MS = 300

/** Sends raw bytes and reads until the server closes (half-closing after QUIET_MS without data), or the deadline. */
function exchange(port: number, bytes: Uint8Array): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect({ host: '127.0.0.1', port })
    let settled = false
    const finish = (closed: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed })
    }
    const timer = setTimeout(() => finish(false), ANSWER_DEADLINE_MS)
    let quiet: NodeJS.Timeout | undefined
    const wait = (): void => {
      clearTimeout(quiet)
      quiet = setTimeout(() => socket.end(), QUIET_MS)
    }
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      wait()
    })
    socket.on('error', () => finish(true))
    socket.on('close', () => {
      clearTimeout(quiet)
      finish(true)
    })
    socket.on('connect', () => {
      socket.write(bytes)
      wait()
    })
  })
}

export const httpRequests: FuzzTarget = {
  name: 'http',
  what: 'raw HTTP requests → the running HTTP API (startHttpApi on 127.0.0.1, bearer token) over a LevelDB reference',
  weight: 8,
  deadlineMs: ANSWER_DEADLINE_MS + 5_000,
  async open(setup: Rng): Promise<TargetSession> {
    const ref = await openReference('http')
    const db = ref.db
    const token = createApiToken()
    const internal: string[] = []
    const logger = callbackLogger((level, message) => {
      if (level === 'error') internal.push(message)
    })
    let url = ''
    const status = async (): Promise<PeerStatus> => ({ ...(await db.status()), name: 'fuzz', peerId: '12D3KooWfuzz', addresses: [], connectedPeers: [], http: url, sync: { rounds: 0, failedRounds: 0, rowsRepaired: 0, partitionsByFeed: 0, partitionsByTree: 0, peers: [], loading: [] } })
    const counters: PeerCounters = { deltasIn: 0, deltasOut: 0, bytesIn: 0, bytesOut: 0, syncRounds: 0, syncRoundsFailed: 0, rowsRepaired: 0, syncPartitionsByFeed: 0, syncPartitionsByTree: 0, refused: 0, refusedByReason: {}, connectedPeers: 0, syncBytesByMessage: {}, syncByPeer: [] }
    const api = await startHttpApi({ token, host: '127.0.0.1', port: 0, db, status, counters: () => counters, logger })
    url = api.url
    const port = Number(new URL(url).port)
    const seeds: Request[] = fc.sample(requestArb(), { seed: setup.int(0, 2 ** 31 - 1), numRuns: 500 }).map(({ method, path, body }) => {
      const text = body === undefined ? null : JSON.stringify(body)
      // connection: close, so the server closes once it has answered (see exchange).
      const headers: Array<[string, string]> = [['host', `127.0.0.1:${port}`], ['authorization', `Bearer ${token}`], ['connection', 'close']]
      if (text !== null) headers.push(['content-type', 'application/json'], ['content-length', String(Buffer.byteLength(text))])
      return { method, target: path, headers, body: text }
    })
    const rawSeeds = seeds.slice(0, 50).map(serialise)
    // What the server answered, for the report of a finding.
    const answers = new WeakMap<object, string>()
    return {
      next(rng: Rng): Input {
        let request = rng.pick(seeds)
        const roll = rng.int(0, 99)
        if (roll < 20) return { request, raw: null }
        for (let k = rng.int(1, 3); k > 0; k--) request = mutateRequest(rng, request, token, port)
        if (roll < 90) return { request, raw: null }
        let raw = serialise(request)
        for (let k = rng.int(1, 2); k > 0; k--) raw = mutateBytes(rng, raw, rawSeeds)
        return { request, raw }
      },
      async run(input: unknown): Promise<Verdict | Crash> {
        const i = input as Input
        const logged = internal.length
        const { text, closed } = await exchange(port, i.raw ?? serialise(i.request))
        answers.set(i, text)
        if (!closed) return new Crash(`no answer and no close within ${ANSWER_DEADLINE_MS} ms (got ${JSON.stringify(text.slice(0, 200))})`)
        // A handler may outlive its connection (a whole request followed by junk): wait for it.
        await api.idle()
        if (internal.length > logged) return new Crash(`the server logged an internal error: ${internal.slice(logged).join(' | ').slice(0, 800)}`)
        const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1])).filter((s) => s !== 100)
        const failed = statuses.find((s) => s >= 500)
        if (failed !== undefined) return new Crash(`answered ${failed}: ${text.slice(0, 600)}`)
        const write = i.raw !== null || MUTATING.has(i.request.method)
        // No answer (the server or the client closed first), or Node's parser refusing bytes that
        // followed a whole request (which ran, its answer cut off): a write may have run or not; a
        // read changes nothing.
        if (statuses.length === 0 || PARSER_REFUSAL.test(text)) return write ? 'changed' : 'unchanged'
        if (statuses.every((s) => s >= 400)) return 'refused'
        // Any 2xx to a method that writes may have changed rows; a read or a preflight may not.
        return write ? 'changed' : 'unchanged'
      },
      show: (input) => `${show(input)} → answered ${JSON.stringify((answers.get(input as object) ?? '').slice(0, 300))}`,
      fingerprint: () => fingerprint(db),
      snapshot: () => snapshot(db),
      check: () => checkProblems(db),
      async close() {
        await api.close()
        await ref.close()
      },
    }
  },
}

import { Agent, request } from 'node:http'
import { callbackLogger, silentLogger } from '../../src/log.js'
import { connect, type Socket } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startHttpApi, type HttpApi } from '../../src/http/server.js'
import { HttpStartError } from '../../src/http/errors.js'
import { MAX_BODY_BYTES } from '../../src/http/body.js'
import type { PeerCounters, PeerStatus } from '../../src/status.js'
import { Shoal } from '../../src/shoal.js'
import { PeerStartingError } from '../../src/errors.js'
import { createApiToken } from '../../src/http/token.js'
import { tempDir } from '../helpers/tempdir.js'

const STOCK = {
  primaryKey: 'id',
  partitionBy: 'store',
  columns: { id: 'string', store: 'string', name: 'string', price: 'number', qty: 'counter', notes: 'text' },
}

const counters: PeerCounters = { deltasIn: 12, deltasOut: 7, bytesIn: 3400, bytesOut: 2100, syncRounds: 3, syncRoundsFailed: 1, rowsRepaired: 5, syncPartitionsByFeed: 2, syncPartitionsByTree: 1, refused: 1, refusedByReason: { DELTA_INVALID: 1 }, connectedPeers: 2, syncBytesByMessage: { range: { in: 120, out: 64_000 } }, syncByPeer: [{ peer: '12D3KooWOther', totals: { rounds: 4, failedRounds: 1, rowsIn: 1500, rowsOut: 3, bytesIn: 48000, bytesOut: 900 } }] }

let dir: string
let db: Shoal
let api: HttpApi

async function fakeStatus(): Promise<PeerStatus> {
  return {
    ...(await db.status()),
    name: 'test',
    peerId: '12D3KooWtest',
    addresses: ['/ip4/127.0.0.1/tcp/1/p2p/12D3KooWtest'],
    connectedPeers: [],
    http: api.url,
    sync: { rounds: 3, failedRounds: 1, rowsRepaired: 5, partitionsByFeed: 0, partitionsByTree: 0, peers: [], loading: [] },
  }
}

interface Answer {
  status: number
  headers: Headers
  body: Record<string, unknown>
}

const TOKEN = createApiToken()
const auth = { authorization: `Bearer ${TOKEN}` }

async function call(method: string, path: string, body?: unknown): Promise<Answer> {
  const init: RequestInit = { method, headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' } }
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body)
  const response = await fetch(api.url + path, init)
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> }
}

/** Polls `condition` until it holds, failing after a generous deadline (never a fixed sleep). */
async function until(condition: () => boolean, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${deadlineMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function expectError(answer: Answer, status: number, code: string): void {
  expect({ status: answer.status, code: (answer.body.error as { code: string } | undefined)?.code }).toEqual({ status, code })
  expect(typeof (answer.body.error as { message: unknown }).message).toBe('string')
}

beforeEach(async () => {
  dir = await tempDir()
  db = await Shoal.open({ dir })
  api = await startHttpApi({ token: TOKEN, host: '127.0.0.1', port: 0, db, status: fakeStatus, counters: () => counters })
  const defined = await call('PUT', '/v1/tables/stock', STOCK)
  expect(defined.status).toBe(200)
})

afterEach(async () => {
  await api.close()
  await db.close()
})

describe('HTTP API', () => {
  it('serves the peer status', async () => {
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const answer = await call('GET', '/v1/status')
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ name: 'test', peerId: '12D3KooWtest', actor: db.actor, http: api.url })
    expect((answer.body.tables as Array<{ name: string }>).map((t) => t.name)).toEqual(['stock'])
  })

  it('defines and extends tables, refusing conflicts and mismatched names', async () => {
    const schema = await call('PUT', '/v1/tables/stock', { ...STOCK, name: 'stock', columns: { ...STOCK.columns, shelf: 'string' } })
    expect(schema.status).toBe(200)
    expect(schema.body).toMatchObject({ name: 'stock', primaryKey: 'id', partitionBy: 'store', engine: 'yjs' })
    expect((schema.body.columns as Record<string, string>).shelf).toBe('string')
    expect(db.schema('stock').columns.shelf).toBe('string')

    expectError(await call('PUT', '/v1/tables/stock', { ...STOCK, engine: 'automerge' }), 409, 'SCHEMA_CONFLICT')
    expectError(await call('PUT', '/v1/tables/stock', { ...STOCK, name: 'other' }), 400, 'VALUE_INVALID')
    expectError(await call('PUT', '/v1/tables/bad', { primaryKey: 'id', columns: { id: 'strin' } }), 400, 'SCHEMA_INVALID')
    expectError(await call('PUT', '/v1/tables/bad', [1, 2]), 400, 'VALUE_INVALID')
  })

  it('puts (merging columns), gets, increments, deletes rows', async () => {
    const created = await call('PUT', '/v1/tables/stock/rows/7%3AA1', { store: '7', name: 'Widget', price: 2.5, qty: 10 })
    expect(created.status).toBe(200)
    expect(created.body).toEqual({ key: '7:A1', row: { id: '7:A1', store: '7', name: 'Widget', price: 2.5, qty: 10, notes: '' } })

    const merged = await call('PUT', '/v1/tables/stock/rows/7%3AA1', { price: 2.75 })
    expect(merged.body.row).toMatchObject({ name: 'Widget', price: 2.75, qty: 10 })

    const incremented = await call('POST', '/v1/tables/stock/rows/7%3AA1/increment', { column: 'qty', by: -3 })
    expect(incremented.status).toBe(200)
    expect(incremented.body.row).toMatchObject({ qty: 7 })
    const byOne = await call('POST', '/v1/tables/stock/rows/7%3AA1/increment?partition=7', { column: 'qty' })
    expect(byOne.body.row).toMatchObject({ qty: 8 })

    const got = await call('GET', '/v1/tables/stock/rows/7%3AA1')
    expect(got.body).toEqual({ key: '7:A1', row: { id: '7:A1', store: '7', name: 'Widget', price: 2.75, qty: 8, notes: '' } })
    expect((await call('GET', '/v1/tables/stock/rows/7%3AA1?partition=7')).status).toBe(200)

    expect((await call('DELETE', '/v1/tables/stock/rows/7%3AA1')).body).toEqual({ deleted: true })
    expect((await call('DELETE', '/v1/tables/stock/rows/7%3AA1')).body).toEqual({ deleted: false })
    expectError(await call('GET', '/v1/tables/stock/rows/7%3AA1'), 404, 'ROW_NOT_FOUND')
  })

  it('edits text columns in place, and a put of a text column replaces its value', async () => {
    await call('PUT', '/v1/tables/stock/rows/t1', { store: '1', notes: 'hello' })
    const edited = await call('POST', '/v1/tables/stock/rows/t1/text', { column: 'notes', index: 5, insert: ' world' })
    expect(edited.status).toBe(200)
    expect(edited.body).toMatchObject({ key: 't1', row: { notes: 'hello world' } })
    const replaced = await call('POST', '/v1/tables/stock/rows/t1/text?partition=1', { column: 'notes', index: 0, delete: 5, insert: 'goodbye' })
    expect(replaced.body.row).toMatchObject({ notes: 'goodbye world' })
    expect((await call('POST', '/v1/tables/stock/rows/t1/text', { column: 'notes', index: 7, delete: 6 })).body.row).toMatchObject({ notes: 'goodbye' })
    // A put sets the value (as the smallest edit), it does not append.
    expect((await call('PUT', '/v1/tables/stock/rows/t1', { notes: 'goodbye, world' })).body.row).toMatchObject({ notes: 'goodbye, world' })
    expect(await db.table('stock').get('t1')).toMatchObject({ notes: 'goodbye, world' })

    for (const body of [
      {},
      { column: 'notes' },
      { column: 'notes', index: 0 },
      { column: 'notes', index: -1, insert: 'x' },
      { column: 'notes', index: 1.5, insert: 'x' },
      { column: 'notes', index: '0', insert: 'x' },
      { column: 'notes', index: 0, delete: 'all' },
      { column: 'notes', index: 0, insert: 7 },
      { column: 'notes', index: 0, insert: 'x', at: 1 },
      { column: 'notes', index: 99, insert: 'x' },
      { column: 'notes', index: 10, delete: 10 },
      { column: 'name', index: 0, insert: 'x' },
    ]) {
      expectError(await call('POST', '/v1/tables/stock/rows/t1/text', body), 400, 'VALUE_INVALID')
    }
    expectError(await call('POST', '/v1/tables/stock/rows/t1/text', { column: 'colour', index: 0, insert: 'x' }), 400, 'COLUMN_UNKNOWN')
    expectError(await call('POST', '/v1/tables/stock/rows/absent/text', { column: 'notes', index: 0, insert: 'x' }), 404, 'ROW_NOT_FOUND')
    expect(await db.table('stock').get('t1')).toMatchObject({ notes: 'goodbye, world' })
  })

  it('decodes keys holding slashes and non-ASCII characters', async () => {
    const key = 'a/b ü?#%'
    const path = `/v1/tables/stock/rows/${encodeURIComponent(key)}`
    expect((await call('PUT', path, { store: '1', name: 'odd' })).body.key).toBe(key)
    expect(await db.table('stock').get(key)).toMatchObject({ id: key, name: 'odd' })
    expect((await call('GET', path)).body).toMatchObject({ key, row: { name: 'odd' } })
    expectError(await call('GET', '/v1/tables/stock/rows/%E0%A4%A'), 400, 'BAD_PATH')
  })

  it('answers a PUT only once the write is durable: a fresh open of the folder sees it', async () => {
    await call('PUT', '/v1/tables/stock/rows/k1', { store: '1', name: 'durable', qty: 4 })
    await api.close()
    await db.close()
    db = await Shoal.open({ dir })
    api = await startHttpApi({ token: TOKEN, host: '127.0.0.1', port: 0, db, status: fakeStatus, counters: () => counters })
    expect(await db.table('stock').get('k1')).toMatchObject({ name: 'durable', qty: 4 })
  })

  it('scans pages with a cursor, per partition or across partitions', async () => {
    for (let i = 0; i < 5; i++) await call('PUT', `/v1/tables/stock/rows/k${i}`, { store: String(i % 2), name: `n${i}` })
    const first = await call('GET', '/v1/tables/stock/rows?limit=3')
    expect(first.status).toBe(200)
    expect((first.body.rows as unknown[]).length).toBe(3)
    expect(typeof first.body.next).toBe('string')
    const second = await call('GET', `/v1/tables/stock/rows?limit=3&after=${encodeURIComponent(first.body.next as string)}`)
    expect((second.body.rows as unknown[]).length).toBe(2)
    expect(second.body.next).toBeNull()
    const keys = [...(first.body.rows as Array<{ id: string }>), ...(second.body.rows as Array<{ id: string }>)].map((r) => r.id).sort()
    expect(keys).toEqual(['k0', 'k1', 'k2', 'k3', 'k4'])

    const evens = await call('GET', '/v1/tables/stock/rows?partition=0')
    expect((evens.body.rows as Array<{ id: string }>).map((r) => r.id)).toEqual(['k0', 'k2', 'k4'])
    expect(evens.body.next).toBeNull()
  })

  it('maps every refusal to the error contract', async () => {
    await call('PUT', '/v1/tables/stock/rows/k1', { store: '1' })
    await call('DELETE', '/v1/tables/stock/rows/k1')

    expectError(await call('GET', '/v1/tables/nope/rows/k1'), 404, 'TABLE_UNKNOWN')
    expectError(await call('PUT', '/v1/tables/nope/rows/k1', { a: 1 }), 404, 'TABLE_UNKNOWN')
    expectError(await call('GET', '/v1/tables/stock/rows/absent'), 404, 'ROW_NOT_FOUND')
    expectError(await call('GET', '/v1/tables/stock/rows/k1'), 404, 'ROW_NOT_FOUND')
    expectError(await call('POST', '/v1/tables/stock/rows/k1/increment', { column: 'qty' }), 404, 'ROW_NOT_FOUND')
    expectError(await call('PUT', '/v1/tables/stock/rows/k2', '{"store": '), 400, 'BAD_JSON')
    expectError(await call('PUT', '/v1/tables/stock/rows/k2', ''), 400, 'BAD_JSON')
    expectError(await call('PUT', '/v1/tables/stock/rows/k2', [1]), 400, 'VALUE_INVALID')
    expectError(await call('PUT', '/v1/tables/stock/rows/k2', { store: '1', colour: 'red' }), 400, 'COLUMN_UNKNOWN')
    expectError(await call('PUT', '/v1/tables/stock/rows/k2', { store: '1', price: 'cheap' }), 400, 'VALUE_INVALID')
    expectError(await call('PUT', '/v1/tables/stock/rows/k2?partition=2', { store: '1' }), 400, 'PARTITION_INVALID')
    expectError(await call('PUT', '/v1/tables/stock/rows/k2', 'x'.repeat(MAX_BODY_BYTES + 1)), 413, 'BODY_TOO_LARGE')
    await call('PUT', '/v1/tables/wide', { primaryKey: 'id', columns: { id: 'string', a: 'string', b: 'string', c: 'string', d: 'string', e: 'string' } })
    const big = 'x'.repeat(250 * 1024)
    expectError(await call('PUT', '/v1/tables/wide/rows/w', { a: big, b: big, c: big, d: big, e: big }), 413, 'ROW_TOO_LARGE')

    await call('PUT', '/v1/tables/stock/rows/k3', { store: '1' })
    for (const body of [{}, { column: 'qty', by: 'two' }, { column: 'qty', by: 1.5 }, { column: 'name' }, { column: 'qty', step: 1 }, '"nope"']) {
      expectError(await call('POST', '/v1/tables/stock/rows/k3/increment', body), 400, 'VALUE_INVALID')
    }
    expectError(await call('POST', '/v1/tables/stock/rows/k3/increment', { column: 'colour' }), 400, 'COLUMN_UNKNOWN')

    for (const limit of ['0', '1001', 'ten', '-1', '2.5', '']) {
      expectError(await call('GET', `/v1/tables/stock/rows?limit=${limit}`), 400, 'VALUE_INVALID')
    }
    expectError(await call('GET', '/v1/tables/stock/rows?after='), 400, 'VALUE_INVALID')
    expectError(await call('GET', '/v1/tables/stock/rows?after=not%20a%20cursor'), 400, 'VALUE_INVALID')
    expectError(await call('GET', '/v1/tables/stock/rows?partiton=1'), 400, 'VALUE_INVALID')

    expectError(await call('GET', '/v1/nothing'), 404, 'NOT_FOUND')
    expectError(await call('GET', '/v1/tables/stock/rows/k3/extra'), 404, 'NOT_FOUND')
    const wrong = await call('POST', '/v1/tables/stock/rows/k3')
    expectError(wrong, 405, 'METHOD_NOT_ALLOWED')
    expect(wrong.headers.get('allow')).toBe('GET, PUT, DELETE')
    expectError(await call('DELETE', '/v1/status'), 405, 'METHOD_NOT_ALLOWED')
  })

  it('answers 503 STORE_CLOSED once the store is closed, and 500 INTERNAL without a stack for bugs', async () => {
    const logged: string[] = []
    const other = await startHttpApi({
      token: TOKEN,
      host: '127.0.0.1',
      port: 0,
      db,
      status: () => Promise.reject(new TypeError('boom')),
      counters: () => counters,
      logger: callbackLogger((_level, m) => logged.push(m)),
    })
    try {
      const response = await fetch(`${other.url}/v1/status`, { headers: auth })
      expect(response.status).toBe(500)
      const text = await response.text()
      expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: expect.any(String) } })
      expect(text).not.toMatch(/boom|TypeError/)
      expect(logged.join('\n')).toMatch(/boom/)
    } finally {
      await other.close()
    }
    await db.close()
    expectError(await call('GET', '/v1/tables/stock/rows/k1'), 503, 'STORE_CLOSED')
    db = await Shoal.open({ dir })
  })

  it('answers 503 STARTING while the peer behind it is still starting, status and metrics alike', async () => {
    const other = await startHttpApi({
      token: TOKEN,
      host: '127.0.0.1',
      port: 0,
      db,
      status: () => Promise.reject(new PeerStartingError()),
      counters: () => {
        throw new PeerStartingError()
      },
      logger: silentLogger,
    })
    try {
      for (const path of ['/v1/status', '/metrics']) {
        const response = await fetch(`${other.url}${path}`, { headers: auth })
        expect(response.status).toBe(503)
        expect(await response.json()).toEqual({ error: { code: 'STARTING', message: 'the peer is still starting; retry in a moment' } })
      }
    } finally {
      await other.close()
    }
  })

  // Found by the fuzzer (npm run fuzz): the stream error of a body cut off by its client reached
  // the error contract as an untyped error, so any local page could fill the log with "internal" errors.
  it('treats a client hanging up in the middle of its body as the client’s mistake: nothing logged as internal, nothing stored', async () => {
    const logged: Array<{ level: string; message: string }> = []
    const other = await startHttpApi({ token: TOKEN, host: '127.0.0.1', port: 0, db, status: fakeStatus, counters: () => counters, logger: callbackLogger((level, message) => logged.push({ level, message })) })
    try {
      const before = await db.status()
      const port = Number(new URL(other.url).port)
      const socket = connect({ host: '127.0.0.1', port })
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      socket.write(`PUT /v1/tables/stock/rows/cut HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"store":`)
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
      // Read whatever comes back, so the socket can end and close.
      socket.resume()
      socket.end()
      await closed
      await other.idle()
      expect(logged.filter((l) => l.level === 'error')).toEqual([])
      expect(await db.status()).toEqual(before)
      expect(await db.table('stock').get('cut')).toBeNull()
    } finally {
      await other.close()
    }
  })

  it('exports Prometheus metrics from the counters and row counts', async () => {
    await call('PUT', '/v1/tables/stock/rows/a', { store: '1' })
    await call('PUT', '/v1/tables/stock/rows/b', { store: '1' })
    await call('PUT', '/v1/tables/stock/rows/c', { store: '2' })
    const response = await fetch(`${api.url}/metrics`, { headers: auth })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await response.text()
    const lines = text.split('\n')
    expect(lines).toContain('shoal_rows{table="stock",partition="1"} 2')
    expect(lines).toContain('shoal_rows{table="stock",partition="2"} 1')
    expect(lines).toContain('# TYPE shoal_deltas_in_total counter')
    expect(lines).toContain('shoal_deltas_in_total 12')
    expect(lines).toContain('shoal_deltas_out_total 7')
    expect(lines).toContain('shoal_bytes_in_total 3400')
    expect(lines).toContain('shoal_bytes_out_total 2100')
    expect(lines).toContain('shoal_sync_rounds_total 3')
    expect(lines).toContain('shoal_sync_rounds_failed_total 1')
    expect(lines).toContain('shoal_sync_peer_rows_in_total{peer="12D3KooWOther"} 1500')
    expect(lines).toContain('shoal_sync_message_bytes_total{direction="in",message="range"} 120')
    expect(lines).toContain('shoal_sync_message_bytes_total{direction="out",message="range"} 64000')
    expect(lines).toContain('shoal_sync_peer_bytes_in_total{peer="12D3KooWOther"} 48000')
    expect(lines).toContain('shoal_sync_peer_bytes_out_total{peer="12D3KooWOther"} 900')
    expect(lines).toContain('shoal_sync_peer_rounds_failed_total{peer="12D3KooWOther"} 1')
    expect(lines).toContain('shoal_rows_repaired_total 5')
    expect(lines).toContain('shoal_sync_partitions_by_feed_total 2')
    expect(lines).toContain('shoal_sync_partitions_by_tree_total 1')
    expect(lines).toContain('shoal_refused_total{reason="DELTA_INVALID"} 1')
    expect(lines).toContain('# TYPE shoal_connected_peers gauge')
    expect(lines).toContain('shoal_connected_peers 2')

    // A second scrape reflects the new totals, not a sum of both.
    counters.deltasIn = 20
    await call('DELETE', '/v1/tables/stock/rows/c')
    const again = (await (await fetch(`${api.url}/metrics`, { headers: auth })).text()).split('\n')
    expect(again).toContain('shoal_deltas_in_total 20')
    expect(again).toContain('shoal_rows{table="stock",partition="2"} 0')
    counters.deltasIn = 12
  })

  it('keeps the metrics of two APIs in one process apart', async () => {
    const otherDb = await Shoal.open({ dir: await tempDir() })
    const other = await startHttpApi({ token: TOKEN, host: '127.0.0.1', port: 0, db: otherDb, status: fakeStatus, counters: () => ({ ...counters, deltasIn: 99 }) })
    try {
      expect((await (await fetch(`${other.url}/metrics`, { headers: auth })).text()).split('\n')).toContain('shoal_deltas_in_total 99')
      expect((await (await fetch(`${api.url}/metrics`, { headers: auth })).text()).split('\n')).toContain('shoal_deltas_in_total 12')
    } finally {
      await other.close()
      await otherDb.close()
    }
  })

  it('refuses a port in use with HttpStartError naming the address', async () => {
    const port = Number(new URL(api.url).port)
    const attempt = startHttpApi({ token: TOKEN, host: '127.0.0.1', port, db, status: fakeStatus, counters: () => counters })
    await expect(attempt).rejects.toBeInstanceOf(HttpStartError)
    await expect(attempt).rejects.toMatchObject({ code: 'HTTP_START_FAILED', message: expect.stringMatching(new RegExp(`127\\.0\\.0\\.1:${port}.*in use.*--http`)) })
  })

  it('closes with a keep-alive connection open, closing that connection', async () => {
    const agent = new Agent({ keepAlive: true })
    const socket = await new Promise<Socket>((resolve, reject) => {
      const req = request(`${api.url}/v1/status`, { agent, headers: auth }, (res) => {
        const socket = res.socket
        res.resume()
        res.on('end', () => resolve(socket))
      })
      req.on('error', reject)
      req.end()
    })
    expect(socket.destroyed).toBe(false)
    await api.close()
    await until(() => socket.destroyed || socket.readableEnded)
    agent.destroy()
    await expect(fetch(`${api.url}/v1/status`)).rejects.toThrow()
    api = await startHttpApi({ token: TOKEN, host: '127.0.0.1', port: 0, db, status: fakeStatus, counters: () => counters })
  })
})

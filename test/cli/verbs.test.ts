import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { API_FILE } from '../../src/cli/api-target.js'
import { writeApiFile } from '../../src/http/api-file.js'
import { startHttpApi, type HttpApi } from '../../src/http/server.js'
import { createApiToken } from '../../src/http/token.js'
import type { PeerStatus } from '../../src/status.js'
import { Shoal } from '../../src/shoal.js'
import { tempDir } from '../helpers/tempdir.js'
import { CHILD_PROCESSES_TIMEOUT_MS, runOk, runToEnd } from '../helpers/cli.js'

// The verbs against an HTTP API served from this test process (a peer without the network), found
// through the api.json a peer writes; `peer-verbs.test.ts` runs them against a real `shoal start`.

const SCHEMA = JSON.stringify({ primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', name: 'string', qty: 'counter' } })

const TOKEN = createApiToken()

let dir: string
let db: Shoal
let api: HttpApi

async function liveStatus(): Promise<PeerStatus> {
  return {
    ...(await db.status()),
    name: 'fake',
    peerId: '12D3KooWFakePeerForTheCliTest',
    addresses: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWFakePeerForTheCliTest'],
    connectedPeers: [],
    http: api.url,
    sync: {
      rounds: 4,
      failedRounds: 1,
      rowsRepaired: 2,
      partitionsByFeed: 3,
      partitionsByTree: 1,
      peers: [
        {
          peer: '12D3KooWOtherPeer',
          state: 'syncing',
          lastRound: { at: '2026-11-30T07:00:00.000Z', ok: false, durationMs: 30_512, rowsReceived: 480, rowsSent: 0, bytesIn: 61_440, bytesOut: 900, error: 'no bytes from 12D3KooWOtherPeer for 30 s while waiting on it' },
          totals: { rounds: 3, failedRounds: 1, rowsIn: 1_480, rowsOut: 12, bytesIn: 3_250_000, bytesOut: 20_480 },
        },
      ],
      loading: [{ table: 'stock', partition: '1', from: '12D3KooWOtherPeer', received: 520, expected: 1000 }] },
  }
}

beforeEach(async () => {
  dir = await tempDir()
  db = await Shoal.open({ dir })
  api = await startHttpApi({ token: TOKEN, host: '127.0.0.1', port: 0, db, status: liveStatus, counters: () => ({ deltasIn: 0, deltasOut: 0, bytesIn: 0, bytesOut: 0, syncRounds: 0, syncRoundsFailed: 0, rowsRepaired: 0, syncPartitionsByFeed: 0, syncPartitionsByTree: 0, refused: 0, refusedByReason: {}, connectedPeers: 0, syncBytesByMessage: {}, syncByPeer: [] }) })
  await writeApiFile(dir, { url: api.url, pid: process.pid, token: TOKEN })
})

afterEach(async () => {
  await api.close()
  await db.close()
})

describe('shoal verbs over the HTTP API', () => {
  it('define, put, get, increment, scan, delete: tables for people, the API JSON with --json', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    expect(await runOk(['define', 'stock', SCHEMA, '--data', dir])).toMatch(/primaryKey\s+id/)
    expect(db.schema('stock').partitionBy).toBe('store')

    const put = await runOk(['put', 'stock', '7:A1', '{"store": "7", "name": "Widget", "qty": 10}', '--data', dir])
    expect(put).toMatch(/^COLUMN\s+VALUE$/m)
    expect(put).toMatch(/^name\s+Widget$/m)
    expect(put).toMatch(/^qty\s+10$/m)

    const merged = JSON.parse(await runOk(['put', 'stock', '7:A1', '{"name": "Gadget"}', '--data', dir, '--json'])) as unknown
    expect(merged).toEqual({ key: '7:A1', row: { id: '7:A1', store: '7', name: 'Gadget', qty: 10 } })

    expect(await runOk(['increment', 'stock', '7:A1', 'qty', '-3', '--data', dir])).toMatch(/^qty\s+7$/m)
    const once = JSON.parse(await runOk(['increment', 'stock', '7:A1', 'qty', '--partition', '7', '--data', dir, '--json'])) as { row: { qty: number } }
    expect(once.row.qty).toBe(8)

    const got = JSON.parse(await runOk(['get', 'stock', '7:A1', '--data', dir, '--json'])) as unknown
    expect(got).toEqual({ key: '7:A1', row: { id: '7:A1', store: '7', name: 'Gadget', qty: 8 } })

    await runOk(['put', 'stock', '8:B2', '{"store": "8", "name": "Sprocket"}', '--data', dir])
    const page = await runOk(['scan', 'stock', '--limit', '1', '--data', dir])
    expect(page).toMatch(/^ID\s+STORE\s+NAME\s+QTY$/m)
    const cursor = /next page: --after (\S+)/.exec(page)?.[1]
    expect(cursor).toBeDefined()
    const rest = JSON.parse(await runOk(['scan', 'stock', '--limit', '1', '--after', cursor!, '--data', dir, '--json'])) as { rows: Array<{ id: string }>; next: string | null }
    expect(rest.rows.map((r) => r.id)).toHaveLength(1)
    expect([/7:A1/.test(page) ? '7:A1' : '8:B2', rest.rows[0]!.id].sort()).toEqual(['7:A1', '8:B2'])
    expect(await runOk(['scan', 'stock', '--partition', '8', '--data', dir])).toMatch(/Sprocket[\s\S]*1 row\(s\); last page/)

    expect(await runOk(['delete', 'stock', '7:A1', '--data', dir])).toMatch(/deleted stock 7:A1/)
    expect(JSON.parse(await runOk(['delete', 'stock', '7:A1', '--data', dir, '--json']))).toEqual({ deleted: false })
    const gone = await runToEnd(['get', 'stock', '7:A1', '--data', dir])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toMatch(/^shoal: table 'stock' has no row '7:A1'.*\(ROW_NOT_FOUND\)$/m)
  })

  it('reads a schema from @file, reaches the API with --http and $SHOAL_TOKEN, prints API errors with their code', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const file = join(await tempDir(), 'schema.json')
    await writeFile(file, SCHEMA)
    const other = await tempDir()
    const http = `--http=${api.url.replace('http://', '')}`
    const env = { SHOAL_TOKEN: TOKEN }
    expect(JSON.parse(await runOk(['define', 'stock', `@${file}`, http, '--data', other, '--json'], env))).toMatchObject({ name: 'stock', engine: 'yjs' })
    // --http with the data folder of the peer: the token comes from its api.json.
    expect(JSON.parse(await runOk(['scan', 'stock', http, '--data', dir, '--json']))).toEqual({ rows: [], next: null })

    const unknown = await runToEnd(['get', 'nope', 'k', http], env)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/unknown table 'nope'.*\(TABLE_UNKNOWN\)/)
    const badColumn = await runToEnd(['put', 'stock', 'k', '{"colour": "red"}', http], env)
    expect(badColumn.stderr).toMatch(/no column 'colour'.*\(COLUMN_UNKNOWN\)/)
    const badLimit = await runToEnd(['scan', 'stock', '--limit', '0', http], env)
    expect(badLimit.stderr).toMatch(/'limit' must be an integer.*\(VALUE_INVALID\)/)

    // No token, or a wrong one: 401, and the message says where the token comes from.
    const noToken = await runToEnd(['get', 'stock', 'k', http, '--data', other])
    expect(noToken.code).toBe(1)
    expect(noToken.stderr).toMatch(/this API needs a token.*set SHOAL_TOKEN to the "token" in the peer's api\.json.*\(UNAUTHORIZED\)/)
    const wrong = await runToEnd(['get', 'stock', 'k', http, '--data', other], { SHOAL_TOKEN: createApiToken() })
    expect(wrong.stderr).toMatch(/the API token is wrong.*\(UNAUTHORIZED\)/)
    const status = await runToEnd(['status', http, '--data', other])
    expect(status.stderr).toMatch(/\(UNAUTHORIZED\)/)
  })

  it('edits a text column in place with `edit`', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    await db.defineTable({ name: 'notes', primaryKey: 'id', columns: { id: 'string', body: 'text' } })
    await runOk(['put', 'notes', 'n1', '{"body": "hello"}', '--data', dir])
    expect(await runOk(['edit', 'notes', 'n1', 'body', '--index', '5', '--insert', ' world', '--data', dir])).toMatch(/^body\s+hello world$/m)
    const replaced = JSON.parse(await runOk(['edit', 'notes', 'n1', 'body', '--index=0', '--delete=5', '--insert=goodbye', '--data', dir, '--json'])) as unknown
    expect(replaced).toEqual({ key: 'n1', row: { id: 'n1', body: 'goodbye world' } })
    expect(await runOk(['edit', 'notes', 'n1', 'body', '--index', '7', '--delete', '6', '--data', dir])).toMatch(/^body\s+goodbye$/m)
    expect(await db.table('notes').get('n1')).toEqual({ id: 'n1', body: 'goodbye' })
    const outside = await runToEnd(['edit', 'notes', 'n1', 'body', '--index', '99', '--insert', 'x', '--data', dir])
    expect(outside.code).toBe(1)
    expect(outside.stderr).toMatch(/index 99 is outside 0\.\.7.*\(VALUE_INVALID\)/)
  })

  it('refuses malformed arguments with exit code 2', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const cases: Array<[string[], RegExp]> = [
      [['put', 'stock', 'k', '{"qty": '], /the row is not valid JSON/],
      [['put', 'stock', 'k', '[1]'], /the row must be a JSON object/],
      [['increment', 'stock', 'k', 'qty', 'two'], /'by' must be an integer/],
      [['get', 'stock'], /get needs <table> <key>; missing <key>/],
      [['delete', 'stock', 'k', 'extra'], /unexpected argument 'extra'/],
      [['define', 'stock', '@/nonexistent/schema.json'], /cannot read schema file/],
      [['edit', 'notes', 'n1', 'body', '--insert', 'x'], /edit needs --index N/],
      [['edit', 'notes', 'n1', 'body', '--index', '0'], /edit needs --delete N, --insert TEXT or both/],
      [['edit', 'notes', 'n1', 'body', '--index', '-1', '--insert', 'x'], /--index must be a whole number/],
      [['edit', 'notes', 'n1', 'body', '--index', '0', '--delete', 'all'], /--delete must be a whole number/],
      [['edit', 'notes', 'n1', '--index', '0', '--insert', 'x'], /edit needs <table> <key> <column>; missing <column>/],
    ]
    for (const [args, message] of cases) {
      const result = await runToEnd([...args, '--data', dir])
      expect({ args, code: result.code }).toEqual({ args, code: 2 })
      expect(result.stderr).toMatch(message)
    }
  })

  it('shows a running peer its live status, including loads in progress', async () => {
    const text = await runOk(['status', '--data', dir])
    expect(text).toMatch(/peer\s+fake/)
    expect(text).toMatch(/id\s+12D3KooWFakePeerForTheCliTest/)
    expect(text).toMatch(/sync\s+4 rounds \(1 failed\), 2 rows repaired; differing partitions: 3 by change feed, 1 by digest tree/)
    expect(text).toMatch(/12D3…erPeer\s+syncing\s+last round .* failed: no bytes from 12D3KooWOtherPeer for 30 s/)
    expect(text).toMatch(/in all: 3 rounds \(1 failed\), 1,480 rows in, 12 out, 3\.1 MiB in, 20\.0 KiB out/)
    expect(text).toMatch(/loading \[##########\.{10}\] 52% 520\/1,000 rows stock\/1 from 12D3…erPeer/)
    const json = JSON.parse(await runOk(['status', '--data', dir, '--json'])) as PeerStatus
    expect(json.peerId).toBe('12D3KooWFakePeerForTheCliTest')
  })
})

/** A loopback port nothing listens on: one the OS just handed out and that was closed again. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('shoal verbs without a running peer', () => {
  it('says how to start one, and status falls back to reading the folder when api.json is stale', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const empty = await tempDir()
    const none = await runToEnd(['get', 'stock', 'k', '--data', empty])
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/no running peer for data folder .*start one with `shoal start --data .*` or pass --http/)

    const port = await closedPort()
    const refused = await runToEnd(['get', 'stock', 'k', '--http', `127.0.0.1:${port}`])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(new RegExp(`no running peer answers at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`))

    // A peer killed without stopping leaves api.json behind; its pid no longer runs.
    const gone = spawn(process.execPath, ['-e', ''])
    const pid = gone.pid!
    await new Promise((resolve) => gone.on('exit', resolve))
    const folder = await tempDir()
    const offline = await Shoal.open({ dir: folder })
    await offline.defineTable({ name: 'notes', primaryKey: 'id', columns: { id: 'string' } })
    await offline.close()
    await writeFile(join(folder, API_FILE), JSON.stringify({ url: 'http://127.0.0.1:1', pid, token: TOKEN }))
    const status = await runOk(['status', '--data', folder])
    expect(status).toMatch(/notes\s+yjs/)
    const stale = await runToEnd(['get', 'notes', 'k', '--data', folder])
    expect(stale.stderr).toMatch(/no running peer for data folder/)
  })
})

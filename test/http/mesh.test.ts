import { describe, expect, it } from 'vitest'
import { readApiFile } from '../../src/http/api-file.js'
import type { TableSchema } from '../../src/index.js'
import { memberFolder, testMesh, type TestMesh } from '../helpers/mesh.js'
import { addressOf, eventually, startPeer, type TestPeer } from '../helpers/peers.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * The HTTP API of a private-mesh peer writes as that peer, within its rights (403 FORBIDDEN
 * otherwise), and takes signed mesh documents from the operator (POST /v1/mesh/documents).
 */

const TABLES: TableSchema[] = [
  { name: 'catalog', primaryKey: 'sku', columns: { sku: 'string', price: 'number' } },
  { name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', qty: 'counter' } },
]

async function member(mesh: TestMesh, group: string, partitions: string[], bootstrap: TestPeer[] = []): Promise<TestPeer & { id: string; api: { url: string; token: string } }> {
  const dir = await tempDir()
  const m = await memberFolder(mesh, dir, group, partitions)
  const p = await startPeer({ dir, trust: m.material, tables: TABLES, http: '127.0.0.1:0', bootstrap: bootstrap.map(addressOf) })
  const api = await readApiFile(dir)
  return { ...p, id: m.id, api: { url: api!.url, token: api!.token! } }
}

// The API's answers, as far as these tests read them.
interface Answer {
  error: { code: string; message: string }
  mesh: unknown
  documents: unknown
}

async function call(api: { url: string; token: string }, method: string, path: string, body?: unknown): Promise<{ status: number; json: Answer }> {
  const response = await fetch(api.url + path, {
    method,
    headers: { authorization: `Bearer ${api.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: response.status, json: (await response.json()) as Answer }
}

describe('HTTP API in a private mesh', () => {
  it("refuses a store's catalog write with 403 FORBIDDEN and takes its own partition's", async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [])
    const store = await member(mesh, 'store', ['7'], [hq])
    await eventually('the store learns the tables', async () => (await store.peer.db.status()).tables.length === 2)
    const refused = await call(store.api, 'PUT', '/v1/tables/catalog/rows/tea', { price: 0 })
    expect(refused.status).toBe(403)
    expect(refused.json.error.code).toBe('FORBIDDEN')
    expect(refused.json.error.message).toMatch(/group 'store' may not write table 'catalog'/)
    expect((await call(store.api, 'PUT', '/v1/tables/stock/rows/tea', { store: '7', qty: 3 })).status).toBe(200)
    expect((await call(store.api, 'PUT', '/v1/tables/stock/rows/cake', { store: '8', qty: 3 })).status).toBe(403)
    expect((await call(hq.api, 'PUT', '/v1/tables/catalog/rows/tea', { price: 4 })).status).toBe(200)
    const status = await call(store.api, 'GET', '/v1/status')
    expect(status.json.mesh).toMatchObject({ group: 'store', partitions: ['7'] })
  })

  it('takes a revocation handed to a peer and refuses documents not signed by the authority', async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [])
    const store = await member(mesh, 'store', ['7'], [hq])
    await eventually('connected', () => hq.peer.node.connectedPeers().length === 1)
    const revocation = Buffer.from(await mesh.revoke(store.id)).toString('base64')
    const taken = await call(hq.api, 'POST', '/v1/mesh/documents', { documents: [revocation] })
    expect(taken).toMatchObject({ status: 200, json: { documents: [{ kind: 'revocation', outcome: 'new' }] } })
    await eventually('HQ hangs up on the revoked store', () => hq.peer.node.connectedPeers().length === 0)
    const forged = Buffer.from(await (await testMesh()).revoke(hq.id)).toString('base64')
    const refused = await call(hq.api, 'POST', '/v1/mesh/documents', { documents: [forged] })
    expect(refused.status).toBe(400)
    expect(refused.json.error.code).toBe('WRONG_MESH')
    expect((await call(hq.api, 'POST', '/v1/mesh/documents', { documents: ['not base64!'] })).status).toBe(400)
  })
})

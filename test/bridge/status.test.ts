import { afterEach, describe, expect, it } from 'vitest'
import { SqlBridge } from '../../src/bridge/bridge.js'
import { parseBridgeConfig } from '../../src/bridge/config.js'
import { formatBridge } from '../../src/cli/format.js'
import { startHttpApi, type HttpApi } from '../../src/http/server.js'
import { createApiToken } from '../../src/http/token.js'
import { MemoryLogger } from '../../src/log.js'
import { Shoal } from '../../src/shoal.js'
import type { PeerCounters, PeerStatus } from '../../src/status.js'
import { tempDir } from '../helpers/tempdir.js'
import { createDatabase, eventually } from './databases.js'

/* The bridge's figures where operators look: `shoal status` (formatBridge) and /metrics. */

const counters: PeerCounters = { deltasIn: 0, deltasOut: 0, bytesIn: 0, bytesOut: 0, syncRounds: 0, syncRoundsFailed: 0, rowsRepaired: 0, syncPartitionsByFeed: 0, syncPartitionsByTree: 0, refused: 0, refusedByReason: {}, connectedPeers: 0, syncBytesByMessage: {}, syncByPeer: [] }
const cleanup: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

describe('SQL bridge status and metrics', () => {
  it('shows captured, pending, written back and dead letters per table in shoal status and /metrics', async () => {
    const database = await createDatabase('sqlite')
    const sql = await database.client()
    cleanup.push(() => sql.close())
    await sql.run(`CREATE TABLE stock (id TEXT PRIMARY KEY, name TEXT, price REAL CHECK (price >= 0), qty INTEGER)`)
    const db = await Shoal.open({ dir: await tempDir() })
    cleanup.push(() => db.close())
    const bridge = await SqlBridge.start({ db, config: parseBridgeConfig({ database: database.database, tables: [{ table: 'stock', counters: ['qty'] }], pollMs: 20, retryMinMs: 60_000 }, 'test'), logger: new MemoryLogger() })
    cleanup.push(() => bridge.stop())
    await sql.run(`INSERT INTO stock VALUES ('A', 'Apple', 1, 5)`)
    await sql.run(`INSERT INTO stock VALUES ('B', 'Pear', 2, 5)`)
    await db.table('stock').put('C', { name: 'Bad', price: -3, qty: 1 })
    await db.table('stock').put('D', { name: 'Good', price: 3, qty: 1 })
    await eventually(() => expect(bridge.status().tables[0]).toMatchObject({ captured: 2, writtenBack: 1, deadLetters: 1, pending: 0 }))

    const status = bridge.status()
    expect(status).toMatchObject({ dialect: 'sqlite', state: 'running', error: null, push: true })
    expect(status.deadLetters).toHaveLength(1)
    expect(status.deadLetters[0]).toMatchObject({ table: 'stock', key: 'C', direction: 'write', attempts: 1 })
    expect(status.deadLetters[0]!.reason).toMatch(/CHECK constraint/)
    const text = formatBridge(status)
    expect(text).toMatch(/^sql\s+sqlite:.*till\.db \(sqlite, running, push wake-ups\)/)
    expect(text).toMatch(/TABLE\s+SQL TABLE\s+CAPTURED\s+PENDING\s+OLDEST PENDING\s+WRITTEN BACK\s+DEAD LETTERS/)
    expect(text).toMatch(/stock\s+stock\s+2\s+0\s+-\s+1\s+1/)
    expect(text).toMatch(/dead letter stock C \(write, 1 attempt, next .*\): .*CHECK constraint/)

    let api: HttpApi | null = null
    const peerStatus = async (): Promise<PeerStatus> => ({ ...(await db.status()), name: 't', peerId: 'p', addresses: [], connectedPeers: [], http: api!.url, sync: { rounds: 0, failedRounds: 0, rowsRepaired: 0, partitionsByFeed: 0, partitionsByTree: 0, peers: [], loading: [] }, bridge: bridge.status() })
    const token = createApiToken()
    const auth = { headers: { authorization: `Bearer ${token}` } }
    api = await startHttpApi({ token, host: '127.0.0.1', port: 0, db, status: peerStatus, counters: () => counters, bridge: () => bridge.status() })
    cleanup.push(() => api!.close())
    const lines = (await (await fetch(`${api.url}/metrics`, auth)).text()).split('\n')
    expect(lines).toContain('# TYPE shoal_sql_captured_total counter')
    expect(lines).toContain('shoal_sql_captured_total{table="stock"} 2')
    expect(lines).toContain('shoal_sql_written_back_total{table="stock"} 1')
    expect(lines).toContain('shoal_sql_pending{table="stock"} 0')
    expect(lines).toContain('shoal_sql_dead_letters{table="stock"} 1')
    expect(lines).toContain('shoal_sql_oldest_pending_seconds{table="stock"} 0')
    expect(lines).toContain('shoal_sql_up 1')
    const live = (await (await fetch(`${api.url}/v1/status`, auth)).json()) as PeerStatus
    expect(live.bridge?.tables[0]).toMatchObject({ table: 'stock', captured: 2, deadLetters: 1 })
  })

  it('reports an unreachable database as connecting, and the peer starts anyway', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    cleanup.push(() => db.close())
    await db.defineTable({ name: 'stock', primaryKey: 'id', columns: { id: 'string', qty: 'counter' } })
    // Port 9 (discard) on loopback: nothing listens there.
    const bridge = await SqlBridge.start({ db, config: parseBridgeConfig({ database: 'postgres://postgres@127.0.0.1:9/none', tables: ['stock'] }, 'test'), logger: new MemoryLogger() })
    cleanup.push(() => bridge.stop())
    expect(bridge.status()).toMatchObject({ state: 'connecting', dialect: 'postgres' })
    expect(bridge.status().error).toMatch(/cannot connect to PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:9\/none/)
    expect(formatBridge(bridge.status())).toMatch(/\(postgres, connecting\): cannot connect/)
  })
})

import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { API_FILE } from '../../src/cli/api-target.js'
import { tempDir } from '../helpers/tempdir.js'
import { CHILD_PROCESSES_TIMEOUT_MS, runOk, runToEnd, shoal, stopPeer, waitForOutput } from '../helpers/cli.js'

const SCHEMA = JSON.stringify({ primaryKey: 'sku', columns: { sku: 'string', name: 'string', qty: 'counter' } })

describe('shoal verbs against a running `shoal start`', () => {
  it('finds the peer through its data folder and reads and writes rows over HTTP', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const data = join(await tempDir(), 'peer')
    const peer = shoal(['start', '--open', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--http', '127.0.0.1:0'])
    const exited = new Promise<number | null>((resolve) => peer.on('exit', (c) => resolve(c)))
    try {
      const banner = await waitForOutput(peer, /running; press Ctrl-C/)
      expect(banner).toMatch(/mesh OPEN \("open": true\); warning: anyone who reaches the libp2p port may read and write every table/)
      const url = /HTTP API (http:\/\/127\.0\.0\.1:\d+)/.exec(banner)?.[1]
      expect(url).toBeDefined()
      // The API's token is in api.json, readable by this user only, in a folder only it can enter.
      expect((await stat(join(data, API_FILE))).mode & 0o777).toBe(0o600)
      expect((await stat(data)).mode & 0o777).toBe(0o700)
      const written = JSON.parse(await readFile(join(data, API_FILE), 'utf8')) as { url: string; pid: number; token: string }
      expect(written).toEqual({ url, pid: peer.pid, token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) })
      expect((await fetch(`${url}/v1/status`)).status).toBe(401)

      await runOk(['define', 'items', SCHEMA, '--data', data])
      expect(await runOk(['put', 'items', 'A1', '{"name": "Widget", "qty": 5}', '--data', data])).toMatch(/^name\s+Widget$/m)
      const incremented = JSON.parse(await runOk(['increment', 'items', 'A1', 'qty', '2', '--data', data, '--json'])) as { row: { qty: number } }
      expect(incremented.row.qty).toBe(7)
      expect(JSON.parse(await runOk(['get', 'items', 'A1', '--data', data, '--json']))).toEqual({ key: 'A1', row: { sku: 'A1', name: 'Widget', qty: 7 } })
      const page = JSON.parse(await runOk(['scan', 'items', '--data', data, '--json'])) as { rows: unknown[]; next: string | null }
      expect(page).toEqual({ rows: [{ sku: 'A1', name: 'Widget', qty: 7 }], next: null })

      const status = await runOk(['status', '--data', data])
      expect(status).toMatch(/id\s+12D3KooW/)
      expect(status).toMatch(/http\s+http:\/\/127\.0\.0\.1:\d+/)
      expect(status).toMatch(/items\s+yjs\s+-\s+-\s+1/)
      const live = JSON.parse(await runOk(['status', '--data', data, '--json'])) as { http: string; tables: Array<{ name: string; rows: number }> }
      expect(live.http).toBe(url)
      expect(live.tables).toEqual([expect.objectContaining({ name: 'items', rows: 1 })])

      expect((await fetch(`${url}/metrics`)).status).toBe(401)
      const metrics = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${written.token}` } })).text()
      expect(metrics.split('\n')).toContain('shoal_rows{table="items",partition=""} 1')

      expect(await runOk(['delete', 'items', 'A1', '--data', data])).toMatch(/deleted items A1/)
      const gone = await runToEnd(['get', 'items', 'A1', '--data', data])
      expect(gone.code).toBe(1)
      expect(gone.stderr).toMatch(/\(ROW_NOT_FOUND\)/)
    } finally {
      await stopPeer(peer)
    }
    expect(await exited).toBe(0)
    expect(existsSync(join(data, API_FILE))).toBe(false)
    // With the peer stopped, status reads the folder itself again.
    expect(await runOk(['status', '--data', data])).toMatch(/items\s+yjs/)
  })

  it('starts without an HTTP API when told to, and refuses a port in use', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const data = join(await tempDir(), 'quiet')
    const peer = shoal(['start', '--open', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-http'])
    const exited = new Promise<number | null>((resolve) => peer.on('exit', (c) => resolve(c)))
    let url: string | undefined
    const other = shoal(['start', '--open', '--data', join(await tempDir(), 'busy'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--http', '127.0.0.1:0'])
    try {
      expect(await waitForOutput(peer, /running; press Ctrl-C/)).toMatch(/HTTP API off/)
      expect(existsSync(join(data, API_FILE))).toBe(false)
      url = /HTTP API http:\/\/(127\.0\.0\.1:\d+)/.exec(await waitForOutput(other, /running; press Ctrl-C/))?.[1]
      expect(url).toBeDefined()
      const clash = await runToEnd(['start', '--open', '--data', join(await tempDir(), 'clash'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--http', url!])
      expect(clash.code).toBe(1)
      expect(clash.stderr).toMatch(new RegExp(`cannot start the HTTP API on ${url!.replace(/\./g, '\\.')}: the address is already in use.*--http`))
    } finally {
      await stopPeer(peer)
      await stopPeer(other)
    }
    expect(await exited).toBe(0)
  })
})

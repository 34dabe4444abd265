import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { API_FILE } from '../../src/cli/api-target.js'
import { tempDir } from '../helpers/tempdir.js'
import { CHILD_PROCESSES_TIMEOUT_MS, runOk, runToEnd, shoal, waitForOutput } from '../helpers/cli.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('shoal CLI', () => {
  it('starts a peer from peers/hq.json, serves live status, refuses check on its folder, stops cleanly on SIGTERM', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const data = join(await tempDir(), 'hq')
    // Any free port for the API: the config's 7001 may belong to a peer the developer is running.
    const peer = shoal(['start', '--config', 'peers/hq.json', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--http', '127.0.0.1:0'])
    const exited = new Promise<number | null>((resolve) => peer.on('exit', (c) => resolve(c)))
    const banner = await waitForOutput(peer, /running; press Ctrl-C/)
    expect(banner).toMatch(/peer\s+hq/)
    expect(banner).toMatch(/catalog\s+yjs/)
    expect(banner).toMatch(/sales\s+automerge\s+store/)
    expect(banner).toMatch(/peer id 12D3KooW/)
    expect(banner).toMatch(/listening on \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    expect(banner).toMatch(/HTTP API http:\/\/127\.0\.0\.1:\d+/)
    expect(banner).toMatch(/mDNS off/)

    // The folder is locked by the peer: status asks the peer, check (offline only) refuses.
    const live = await runOk(['status', '--data', data])
    expect(live).toMatch(/peer\s+hq/)
    expect(live).toMatch(/id\s+12D3KooW/)
    expect(live).toMatch(/sync\s+\d+ rounds/)
    const second = await runToEnd(['check', '--data', data])
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(/in use by a running peer .*stop the peer first/)
    // A second peer on the same folder is refused, and the first one is unharmed.
    const twin = await runToEnd(['start', '--config', 'peers/hq.json', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--http', '127.0.0.1:0'])
    expect(twin.code).toBe(1)
    expect(twin.stderr).toMatch(/in use/)
    expect(await runOk(['status', '--data', data])).toMatch(/peer\s+hq/)

    const stopping = waitForOutput(peer, /stopped cleanly/)
    peer.kill('SIGTERM')
    await stopping
    expect(await exited).toBe(0)
    expect(existsSync(join(data, API_FILE))).toBe(false)

    const status = await runToEnd(['status', '--data', data, '--json'])
    expect(status.code).toBe(0)
    const parsed = JSON.parse(status.stdout) as { tables: Array<{ name: string }> }
    expect(parsed.tables.map((t) => t.name)).toEqual(['catalog', 'sales', 'stock'])
    const check = await runToEnd(['check', '--data', data])
    expect(check.stdout).toMatch(/^ok: \d+ rows/)
  })

  it('names only files that exist in its help', async () => {
    const help = await runOk(['help'])
    expect(help).toMatch(/peers\/scenarios\/split-brain-stock\.yaml/)
    expect(help).toMatch(/^ {2}edit <table> <key> <column> --index N \[--delete N\] \[--insert TEXT\]$/m)
    const paths = [...help.matchAll(/\bpeers\/[\w./-]+\.(?:yaml|json)\b/g)].map((m) => m[0])
    expect(paths.length).toBeGreaterThan(0)
    for (const path of paths) expect({ path, exists: existsSync(join(root, path)) }).toEqual({ path, exists: true })
  })

  it('keeps the API file name the peer writes', async () => {
    // Imported here, not at the top: the peer module loads libp2p and the replication services.
    const { API_FILE: written } = await import('../../src/peer/peer.js')
    expect(written).toBe(API_FILE)
  })

  it('names the bad field of a malformed config and exits 2', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const dir = await tempDir()
    const cases: Array<[string, RegExp]> = [
      ['{"data": "x", "tables": [{"name": "t", "primaryKey": "id", "columns": {"id": "strin"}}]}', /bad\.json: 'tables\[0\]\.columns\.id' must be one of string, number, boolean, json, counter, text \(got "strin"\)/],
      ['{"data": 5}', /'data' must be a folder path/],
      ['{"datta": "x"}', /'datta' is not a known field \(allowed: \$schema, name, data,/],
      ['{"tables": [', /not valid JSON/],
    ]
    for (const [text, message] of cases) {
      const file = join(dir, 'bad.json')
      await writeFile(file, text)
      const result = await runToEnd(['start', '--config', file, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'])
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(message)
    }
    const missing = await runToEnd(['start', '--config', join(dir, 'nope.json')])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/cannot read config file .*no such file/)
    const unknown = await runToEnd(['frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/)
    const noData = await runToEnd(['status', '--data', join(dir, 'absent')])
    expect(noData.code).toBe(2)
    expect(noData.stderr).toMatch(/no data folder/)
    const badHttp = await runToEnd(['start', '--data', join(dir, 'd'), '--http', 'localhost', '--no-mdns'])
    expect(badHttp.code).toBe(2)
    expect(badHttp.stderr).toMatch(/--http must be HOST:PORT/)
  })
})

import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../store/tempdir.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'src/cli/bin.ts')

function shoal(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
}

async function runToEnd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = shoal(args)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  return { code, stdout, stderr }
}

async function waitForOutput(child: ChildProcess, pattern: RegExp, deadlineMs = 30_000): Promise<string> {
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${deadlineMs} ms; output so far:\n${out}`)), deadlineMs)
    const onData = (c: Buffer): void => {
      out += c.toString()
      if (pattern.test(out)) {
        clearTimeout(timer)
        resolve(out)
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (!pattern.test(out)) reject(new Error(`exited with ${code} before ${pattern}; output:\n${out}`))
    })
  })
}

describe('shoal CLI', () => {
  it('starts a peer from peers/hq.json, refuses a second process on its folder, stops cleanly on SIGTERM', async () => {
    const data = join(await tempDir(), 'hq')
    const peer = shoal(['start', '--config', 'peers/hq.json', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'])
    const exited = new Promise<number | null>((resolve) => peer.on('exit', (c) => resolve(c)))
    const banner = await waitForOutput(peer, /running; press Ctrl-C/)
    expect(banner).toMatch(/peer\s+hq/)
    expect(banner).toMatch(/catalog\s+yjs/)
    expect(banner).toMatch(/sales\s+automerge\s+store/)
    expect(banner).toMatch(/peer id 12D3KooW/)
    expect(banner).toMatch(/listening on \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    expect(banner).toMatch(/mDNS off/)

    const second = await runToEnd(['status', '--data', data])
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(/in use by another process/)

    const stopping = waitForOutput(peer, /stopped cleanly/)
    peer.kill('SIGTERM')
    await stopping
    expect(await exited).toBe(0)

    const status = await runToEnd(['status', '--data', data, '--json'])
    expect(status.code).toBe(0)
    const parsed = JSON.parse(status.stdout) as { tables: Array<{ name: string }> }
    expect(parsed.tables.map((t) => t.name)).toEqual(['catalog', 'sales', 'stock'])
    const check = await runToEnd(['check', '--data', data])
    expect(check.stdout).toMatch(/^ok: \d+ rows/)
  })

  it('names the bad field of a malformed config and exits 2', async () => {
    const dir = await tempDir()
    const cases: Array<[string, RegExp]> = [
      ['{"data": "x", "tables": [{"name": "t", "primaryKey": "id", "columns": {"id": "strin"}}]}', /tables\[0\]: table 't': column 'id' has kind "strin"/],
      ['{"data": 5}', /'data' must be a folder path/],
      ['{"datta": "x"}', /unknown field 'datta'/],
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
  })
})

import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { API_FILE, readApiFile, removeApiFile, writeApiFile } from '../../src/http/api-file.js'
import { createApiToken } from '../../src/http/token.js'
import { tempDir } from '../helpers/tempdir.js'

describe('api.json', () => {
  it('is written 0600, replacing a stale file with looser permissions, and read back', async () => {
    const dir = await tempDir()
    const file = join(dir, API_FILE)
    await writeFile(file, JSON.stringify({ url: 'http://127.0.0.1:1', pid: 1 }), { mode: 0o644 })
    expect(await readApiFile(dir)).toEqual({ url: 'http://127.0.0.1:1', pid: 1, token: null })
    const token = createApiToken()
    await writeApiFile(dir, { url: 'http://127.0.0.1:7001', pid: process.pid, token })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(await readApiFile(dir)).toEqual({ url: 'http://127.0.0.1:7001', pid: process.pid, token })
    await removeApiFile(dir)
    expect(await readApiFile(dir)).toBeNull()
    await removeApiFile(dir)
  })

  it('reads anything else as no running peer', async () => {
    const dir = await tempDir()
    for (const text of ['', '{', '[]', 'null', '{"url": "ftp://x", "pid": 1}', '{"url": "http://x", "pid": "1"}', '{"url": "http://x"}']) {
      await writeFile(join(dir, API_FILE), text)
      expect({ text, read: await readApiFile(dir) }).toEqual({ text, read: null })
    }
  })

  it('holds a fresh 256-bit token each time', () => {
    const tokens = new Set(Array.from({ length: 100 }, () => createApiToken()))
    expect(tokens.size).toBe(100)
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })
})

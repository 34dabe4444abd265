import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * The file a running peer writes into its data folder so that the CLI verbs (and scripts) can find
 * and use its HTTP API: `{ url, pid, token }`. It holds the API's bearer token, so it is written
 * with mode 0600 (readable by the peer's user only) and replaced whole, never edited in place.
 */
export const API_FILE = 'api.json'

/** Owner read and write only: the token in it is the API's only credential. */
export const API_FILE_MODE = 0o600

export interface ApiFile {
  url: string
  pid: number
  token: string
}

/**
 * Writes `<dir>/api.json` through a fresh private temp file and a rename, so a reader never sees
 * half a file and a stale api.json with looser permissions (left by a killed peer, or an older
 * version without a token) is replaced, not reused.
 */
export async function writeApiFile(dir: string, info: ApiFile): Promise<string> {
  const file = join(dir, API_FILE)
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const handle = await open(temp, 'wx', API_FILE_MODE)
  try {
    try {
      await handle.writeFile(JSON.stringify(info) + '\n')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, file)
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw error
  }
  return file
}

/** Reads `<dir>/api.json`; null when it is absent or not one (a token-less file from an older peer counts as one without a token). */
export async function readApiFile(dir: string): Promise<{ url: string; pid: number; token: string | null } | null> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(join(dir, API_FILE), 'utf8'))
  } catch {
    return null
  }
  const { url, pid, token } = (parsed ?? {}) as { url?: unknown; pid?: unknown; token?: unknown }
  if (typeof url !== 'string' || !/^https?:\/\//.test(url) || typeof pid !== 'number' || !Number.isSafeInteger(pid)) return null
  return { url, pid, token: typeof token === 'string' && token !== '' ? token : null }
}

export async function removeApiFile(dir: string): Promise<void> {
  await unlink(join(dir, API_FILE)).catch(() => undefined)
}

/* Data folders of a benchmark: fresh ones under os.tmpdir(), removed afterwards, and their size on disk. */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A new empty folder `<tmpdir>/shoal-<bench>-<label>-XXXXXX`. */
export function tempDir(bench: string, label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-${bench}-${label}-`))
}

/** Removes a folder and everything in it; retries while a closing store still flushes into it. */
export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
}

/** Apparent size of every file under `dir`, in bytes (what `du -sb` reports). */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += await folderBytes(path)
    else total += (await stat(path)).size
  }
  return total
}

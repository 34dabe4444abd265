/* Which source a result measured: a hash of its .ts files, written with every result. */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** Identifies the source measured: a hash of every .ts file under `root`. */
export function sourceHash(root: string): string {
  const hash = createHash('sha256')
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.ts')) hash.update(path.slice(root.length)).update(readFileSync(path))
    }
  }
  try {
    walk(root)
    return hash.digest('hex').slice(0, 16)
  } catch {
    return 'unknown'
  }
}

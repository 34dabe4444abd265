import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { Shoal } from '../../src/index.js'
import { tempDir } from '../helpers/tempdir.js'

const writer = fileURLToPath(new URL('../fixtures/crash-writer.ts', import.meta.url))
const ACKS_BEFORE_KILL = 1500

/** Runs the writer in a real child process and SIGKILLs it once enough writes were acknowledged. */
async function writeThenKill(dir: string, engine: string): Promise<Map<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', writer, dir, engine], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const acked = new Map<string, number>()
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)))
  let count = 0
  for await (const line of createInterface({ input: child.stdout })) {
    const { sku, qty } = JSON.parse(line) as { sku: string; qty: number }
    acked.set(sku, Math.max(acked.get(sku) ?? 0, qty))
    if (++count === ACKS_BEFORE_KILL) child.kill('SIGKILL')
  }
  const how = await exited
  if (how !== 'SIGKILL') throw new Error(`writer ended with ${String(how)} before it was killed:\n${stderr}`)
  return acked
}

describe.each(['yjs', 'automerge', 'columns'])('crash safety on %s', (engine) => {
  it('loses no acknowledged write when the process is killed with SIGKILL', async () => {
    const dir = await tempDir()
    const acked = await writeThenKill(dir, engine)
    expect(acked.size).toBeGreaterThan(100)

    const db = await Shoal.open({ dir })
    try {
      const t = db.table('stock')
      for (const [sku, qty] of acked) {
        const row = await t.get(sku)
        expect(row, `acknowledged row ${sku}`).not.toBeNull()
        // Writes in flight at the kill may also have landed, never fewer than acknowledged.
        expect(row!.qty as number).toBeGreaterThanOrEqual(qty)
      }
      const report = await db.check()
      expect(report.problems).toEqual([])
      expect(report.rows).toBeGreaterThanOrEqual(acked.size)
      const status = await db.status()
      await db.close()
      // Reopening again restores the same rows and digests.
      const again = await Shoal.open({ dir })
      try {
        expect(await again.status()).toEqual(status)
      } finally {
        await again.close()
      }
    } finally {
      await db.close()
    }
  })
})

import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { RowNotFoundError, Shoal, UnknownColumnError, ValidationError } from '../../src/index.js'
import { MAX_ATOMIC_WRITES } from '../../src/store/store.js'
import { tempDir } from '../helpers/tempdir.js'

const SCHEMA = { name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', qty: 'counter', name: 'string' } } as const

describe('Shoal.applyBatch and bookmarks', () => {
  it('commits writes and the bookmark together; refused writes are reported and do not stop the others', async () => {
    const dir = await tempDir()
    const db = await Shoal.open({ dir })
    await db.defineTable(SCHEMA)
    const seen: Array<{ key: string; source: string | undefined }> = []
    db.subscribe((e) => {
      if (e.table === 'stock') seen.push({ key: e.key, source: e.source })
    })
    const results = await db.applyBatch(
      [
        { op: 'put', table: 'stock', key: 'A', values: { store: '1', qty: 5, name: 'apple' } },
        { op: 'update', table: 'stock', key: 'missing', values: { name: 'x' } },
        { op: 'increment', table: 'stock', key: 'A', column: 'qty', by: -2 },
        { op: 'put', table: 'stock', key: 'B', values: { store: '2', nope: 1 } },
        { op: 'put', table: 'stock', key: 'C', values: { store: '2', qty: 1 } },
        { op: 'delete', table: 'stock', key: 'C' },
        { op: 'put', table: 'nowhere', key: 'x', values: {} },
      ],
      { bookmark: { name: 'capture', value: '1-7' }, source: 'test' },
    )
    expect(results.map((r) => r.ok)).toEqual([true, false, true, false, true, true, false])
    expect(results[0]).toEqual({ ok: true, result: { key: 'A', partition: '1', changed: true, alive: true, life: 1, row: { sku: 'A', store: '1', qty: 5, name: 'apple' } } })
    expect(results[2]).toMatchObject({ ok: true, result: { row: { qty: 3 } } })
    expect((results[1] as { error: Error }).error).toBeInstanceOf(RowNotFoundError)
    expect((results[3] as { error: Error }).error).toBeInstanceOf(UnknownColumnError)
    expect(results[5]).toMatchObject({ ok: true, result: { changed: true, alive: false, life: 2, row: null } })
    expect(await db.bookmark('capture')).toBe('1-7')
    expect(seen.every((e) => e.source === 'test')).toBe(true)
    expect(seen.map((e) => e.key)).toEqual(['A', 'A', 'C', 'C'])
    await db.close()

    const again = await Shoal.open({ dir })
    expect(await again.bookmark('capture')).toBe('1-7')
    expect(await again.table('stock').get('A')).toEqual({ sku: 'A', store: '1', qty: 3, name: 'apple' })
    expect(await again.table('stock').get('C')).toBeNull()
    // A batch with only a bookmark still commits it; null removes it.
    await again.applyBatch([], { bookmark: { name: 'capture', value: null } })
    expect(await again.bookmark('capture')).toBeNull()
    expect((await again.check()).problems).toEqual([])
    await again.close()
  })

  it('refuses oversized batches and bad bookmarks before writing anything', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    await db.defineTable(SCHEMA)
    const many = Array.from({ length: MAX_ATOMIC_WRITES + 1 }, (_, i) => ({ op: 'put' as const, table: 'stock', key: `K${i}`, values: { store: '1' } }))
    await expect(db.applyBatch(many)).rejects.toBeInstanceOf(ValidationError)
    await expect(db.applyBatch([{ op: 'put', table: 'stock', key: 'A', values: { store: '1' } }], { bookmark: { name: 'a\u0000b', value: 'x' } })).rejects.toBeInstanceOf(ValidationError)
    expect(await db.table('stock').get('A')).toBeNull()
    await db.close()
  })

  it('a SIGKILL never separates a batch from its bookmark', async () => {
    const dir = await tempDir()
    const writer = fileURLToPath(new URL('../fixtures/batch-writer.ts', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)))
    let acked = 0
    for await (const line of createInterface({ input: child.stdout })) {
      acked = Math.max(acked, Number(line))
      if (acked >= 150) child.kill('SIGKILL')
    }
    expect(await exited, stderr).toBe('SIGKILL')
    const db = await Shoal.open({ dir })
    const n = Number(await db.bookmark('writer'))
    expect(n).toBeGreaterThanOrEqual(acked)
    for (let i = 0; i < 20; i++) {
      // Exactly the batches up to the bookmark are stored: no more, no fewer.
      expect(await db.table('stock').get(`S${i}`)).toEqual({ sku: `S${i}`, qty: n, last: n })
    }
    expect((await db.check()).problems).toEqual([])
    await db.close()
  })
})

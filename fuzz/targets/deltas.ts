import { ShoalError } from '../../src/errors.js'
import type { Rng } from '../../src/sim/core/rng.js'
import { toHex } from '../../src/table/hash.js'
import { hostileAutomergeDelta, hostileColumnsDelta, hostileYjsDelta, validDeltas, type DeltaSeed } from '../deltas.js'
import { Crash, type FuzzTarget, type TargetSession, type Verdict } from '../harness.js'
import { hostileKey, mutateBytes } from '../mutate.js'
import { checkProblems, fingerprint, KEYS, openReference, REFERENCE_TABLES, snapshot, STORES } from '../reference.js'

/*
 * Row deltas of one engine, applied through the store's remote apply path (Shoal.applyRemoteDelta
 * → Store.applyRemote → the write batch: decode, merge, the row check of table/row-check.ts, one
 * atomic LevelDB batch) of the reference dataset. Documented refusals: ShoalError (DeltaError,
 * ValidationError, PartitionError, RowTooLargeError, UnknownTableError, …).
 */

const POOL = 300

export function showDelta(input: unknown): string {
  const d = input as DeltaSeed
  return `${JSON.stringify(d.table)}/${JSON.stringify(d.partition)?.slice(0, 40)}/${JSON.stringify(d.key)?.slice(0, 40)} ${d.bytes instanceof Uint8Array ? `${d.bytes.length} B ${toHex(d.bytes.subarray(0, 120))}` : String(d.bytes)}`
}

/** Where a delta goes wrong besides its bytes: another table, partition or key, malformed names. */
export function misaddress(rng: Rng, seed: DeltaSeed): DeltaSeed {
  switch (rng.int(0, 5)) {
    case 0:
      return { ...seed, table: rng.pick([...REFERENCE_TABLES.map((t) => t.name), 'nope', '_tables', '', '__proto__']) }
    case 1:
      return { ...seed, partition: rng.pick([...STORES, '', '4', '\u0000', 'x'.repeat(2000)]) }
    case 2:
      // The same key under another partition: a key lives in one partition only.
      return { ...seed, partition: rng.pick(STORES) }
    case 3:
      return { ...seed, key: rng.pick([hostileKey(rng), `${rng.pick(STORES)}:${rng.pick(KEYS)}`, 'x'.repeat(5000)]) }
    case 4:
      return { ...seed, bytes: new Uint8Array(rng.int(0, 3)) }
    default:
      return { ...seed, key: seed.key + '\u0000' }
  }
}

const ENGINE_LABEL = { yjs: 'Yjs', automerge: 'Automerge', columns: 'Columns-engine' } as const

function deltaTarget(engine: 'yjs' | 'automerge' | 'columns', weight: number): FuzzTarget {
  const tables = REFERENCE_TABLES.filter((t) => (t.engine ?? 'yjs') === engine)
  return {
    name: `${engine}-deltas`,
    what: `${ENGINE_LABEL[engine]} row deltas → Shoal.applyRemoteDelta (store remote apply, row check) on a LevelDB reference`,
    weight,
    deadlineMs: 10_000,
    async open(setup: Rng): Promise<TargetSession> {
      const ref = await openReference(engine)
      const db = ref.db
      const valid = (await validDeltas(db, setup, POOL)).filter((d) => tables.some((t) => t.name === d.table))
      const pool: DeltaSeed[] = [...valid]
      const hostile = (rng: Rng, stored: Uint8Array | null, table: string): Uint8Array => {
        const columns = Object.keys(tables.find((t) => t.name === table)!.columns)
        return engine === 'yjs' ? hostileYjsDelta(rng, stored, columns) : engine === 'automerge' ? hostileAutomergeDelta(rng, stored, columns) : hostileColumnsDelta(rng, stored, columns)
      }
      return {
        async next(rng: Rng): Promise<DeltaSeed> {
          const base = rng.pick(pool)
          const roll = rng.int(0, 99)
          if (roll < 15) return base
          if (roll < 40) {
            const [stored] = await db.replication().encodedRows(base.table, base.partition, [base.key])
            const made = { ...base, bytes: hostile(rng, stored ?? null, base.table) }
            if (pool.length < POOL * 3) pool.push(made)
            return made
          }
          if (roll < 85) {
            let bytes = base.bytes
            for (let k = rng.int(1, 3); k > 0; k--) bytes = mutateBytes(rng, bytes, pool.map((p) => p.bytes).slice(0, 50))
            return { ...base, bytes }
          }
          return misaddress(rng, base)
        },
        async run(input: unknown): Promise<Verdict | Crash> {
          const d = input as DeltaSeed
          try {
            const result = await db.applyRemoteDelta(d.table, d.partition, d.key, d.bytes, 'fuzz-peer')
            return result === 'unchanged' ? 'unchanged' : 'changed'
          } catch (error) {
            if (error instanceof ShoalError) return 'refused'
            throw error
          }
        },
        show: showDelta,
        fingerprint: () => fingerprint(db),
        snapshot: () => snapshot(db),
        check: () => checkProblems(db),
        close: () => ref.close(),
      }
    },
  }
}

export const yjsDeltas = deltaTarget('yjs', 8)
// Automerge merges cost ~10× Yjs ones (its rows grow with every accepted change): fewer inputs.
export const automergeDeltas = deltaTarget('automerge', 0.5)
export const columnsDeltas = deltaTarget('columns', 4)

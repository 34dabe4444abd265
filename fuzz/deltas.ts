import * as A from '@automerge/automerge'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import type { Rng } from '../src/sim/core/rng.js'
import { Shoal } from '../src/shoal.js'
import { decode, encode } from 'cborg'
import { hostileKey, hostileValue, mutateValue } from './mutate.js'
import { KEYS, referenceKey, REFERENCE_TABLES, STORES } from './reference.js'

/*
 * Valid and semantically hostile row deltas, made by the real engines:
 *   - valid: a twin store holding a copy of the reference rows makes random writes (puts of every
 *     column kind, increments, text edits, deletes, new rows); each committed change's engine
 *     delta is what a real peer would send, and applies to the reference;
 *   - hostile: a row of the reference edited straight in its Yjs maps or Automerge keys, past the
 *     table API: registers of the wrong kind, NaN and fractional counters, causal lengths that are
 *     not integers, unknown roots and columns, values of every type.
 */

export interface DeltaSeed {
  table: string
  partition: string
  key: string
  bytes: Uint8Array
}

export const TABLE_NAMES = REFERENCE_TABLES.map((t) => t.name)

/** A valid value for a column kind. */
function columnValue(rng: Rng, kind: string): unknown {
  switch (kind) {
    case 'string':
      return rng.pick(['', 'x', 'shelf 9', 'ü🐟', 'a'.repeat(rng.int(1, 200))])
    case 'number':
      return rng.pick([0, -1, 1.5, 1e12, rng.int(-1000, 1000) / 7])
    case 'boolean':
      return rng.chance(0.5)
    case 'json':
      return rng.pick([null, { a: rng.int(0, 9) }, [1, 'two', { three: 3 }], 'text'])
    default:
      return null
  }
}

/** Random valid writes on a twin of the reference; returns the deltas they produced. */
export async function validDeltas(reference: Shoal, rng: Rng, count: number): Promise<DeltaSeed[]> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-fuzz-twin-'))
  const twin = await Shoal.open({ dir, syncWrites: false, actor: 'fuzz-twin' })
  try {
    for (const t of REFERENCE_TABLES) await twin.defineTable(t)
    const source = reference.replication()
    for (const schema of reference.tables()) {
      for (const p of source.partitions(schema.name)) {
        let after: string | undefined
        for (;;) {
          const page = await reference.table(schema.name).scan({ ...(schema.partitionBy === null ? {} : { partition: p.partition }), limit: 1000, ...(after === undefined ? {} : { after }) })
          const keys = page.rows.map((r) => String(r[schema.primaryKey]))
          const docs = await source.encodedRows(schema.name, p.partition, keys)
          for (let i = 0; i < keys.length; i++) if (docs[i] !== null && docs[i] !== undefined) await twin.applyRemoteDelta(schema.name, p.partition, keys[i]!, docs[i]!, 'reference')
          if (page.next === null) break
          after = page.next
        }
      }
    }
    const out: DeltaSeed[] = []
    twin.subscribe((event) => {
      if (event.origin === 'local' && event.table !== '_tables') out.push({ table: event.table, partition: event.partition, key: event.key, bytes: event.delta })
    })
    for (let i = 0; out.length < count && i < count * 4; i++) {
      const schema = REFERENCE_TABLES[rng.int(0, REFERENCE_TABLES.length - 1)]!
      const table = twin.table(schema.name)
      const store = rng.pick(STORES)
      const suffix = rng.chance(0.8) ? rng.pick(KEYS) : `new${rng.int(0, 20)}`
      const key = referenceKey(schema.name, store, suffix)
      const options = (schema.partitionBy ?? null) === null ? {} : { partition: store }
      const columns = Object.entries(schema.columns).filter(([c]) => c !== schema.primaryKey && c !== schema.partitionBy)
      try {
        const op = rng.int(0, 9)
        if (op < 4) {
          const values: Record<string, unknown> = (schema.partitionBy ?? null) === null ? {} : { [schema.partitionBy!]: store }
          for (const [c, kind] of columns) if (kind !== 'counter' && rng.chance(0.5)) values[c] = kind === 'text' ? 'text ' + rng.int(0, 99) : columnValue(rng, kind)
          await table.put(key, values, options)
        } else if (op < 6) {
          const counters = columns.filter(([, k]) => k === 'counter')
          if (counters.length > 0) await table.increment(key, rng.pick(counters)[0], rng.int(-50, 50), options)
        } else if (op < 8) {
          const texts = columns.filter(([, k]) => k === 'text')
          if (texts.length > 0) await table.editText(key, rng.pick(texts)[0], { index: rng.int(0, 3), delete: rng.int(0, 2), insert: rng.pick(['', 'x', 'hello ', 'ü']) }, options)
        } else {
          await table.delete(key, options)
        }
      } catch {
        // A write the twin itself refuses (increment of a deleted row…) makes no delta; try another.
      }
    }
    return out
  } finally {
    await twin.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * A delta of the columns engine made by hand from a stored row's bytes: its structure kept or
 * bent (cells of other lives and columns, foreign and endless actor ids, stamps and totals at the
 * edges of the safe integers, values that are not JSON, `__proto__` inside values), so the
 * engine's parser and merge meet every shape a peer could send.
 */
export function hostileColumnsDelta(rng: Rng, stored: Uint8Array | null, columns: readonly string[]): Uint8Array {
  let row: unknown[]
  try {
    row = stored === null ? [1, 1, ['fuzz-peer'], [0, 1], [], []] : (decode(stored) as unknown[])
  } catch {
    row = [1, 1, ['fuzz-peer'], [0, 1], [], []]
  }
  if (!Array.isArray(row) || row.length !== 6) row = [1, 1, ['fuzz-peer'], [0, 1], [], []]
  const [format, cl, actors, seqs, registers, counters] = row as [unknown, unknown, string[], unknown[], unknown[], unknown[]]
  const edge = (): unknown => rng.pick([0, 1, 2, 3, -1, 1.5, 2 ** 32, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.NaN, '1', null])
  const actor = (): unknown => rng.pick([0, 1, actors.length, -1, 2 ** 31])
  const column = (): unknown => (rng.chance(0.8) ? rng.pick(columns) : hostileKey(rng))
  const json = (): unknown => rng.pick([JSON.stringify(hostileValue(rng)), '{"__proto__": {"polluted": 1}}', '{bad json', '"x".repeat', 5, JSON.stringify('y'.repeat(rng.int(0, 5000)))])
  const out: unknown[] = [rng.chance(0.95) ? format : edge(), rng.chance(0.7) ? cl : edge(), [...actors], [...seqs], [...registers], [...counters]]
  for (let k = rng.int(1, 4); k > 0; k--) {
    switch (rng.int(0, 6)) {
      case 0:
        ;(out[2] as unknown[]).push(rng.pick(['fuzz-peer', 'x'.repeat(rng.int(200, 400)), '', 'fuzz-reference']))
        break
      case 1:
        ;(out[4] as unknown[]).push(rng.pick([1, 3, 2, 0, 2 ** 32 + 1]), column(), json(), rng.chance(0.7) ? rng.int(0, 1000) : edge(), actor(), rng.chance(0.7) ? rng.int(1, 100) : edge())
        break
      case 2:
        ;(out[5] as unknown[]).push(rng.pick([1, 3, 2, 0]), column(), actor(), rng.chance(0.7) ? rng.int(-1000, 1000) : edge(), rng.chance(0.7) ? rng.int(1, 100) : edge())
        break
      case 3:
        ;(out[3] as unknown[]).push(actor(), edge())
        break
      case 4:
        // A group cut short, or one value too many.
        ;(out[rng.pick([3, 4, 5])] as unknown[]).push(edge())
        break
      default: {
        const mutated = mutateValue(rng, out, [...columns, 'fuzz-peer', '__proto__'])
        return encode(Array.isArray(mutated) ? mutated : out)
      }
    }
  }
  return encode(out)
}

/** A Yjs delta written straight into a stored row's maps by another client. */
export function hostileYjsDelta(rng: Rng, stored: Uint8Array | null, columns: readonly string[]): Uint8Array {
  const doc = new Y.Doc()
  // A stored row Yjs cannot load is for the store's check() to report; the delta is then made from nothing.
  if (stored !== null) {
    try {
      Y.applyUpdate(doc, stored)
    } catch {
      doc.destroy()
      return hostileYjsDelta(rng, null, columns)
    }
  }
  doc.clientID = rng.int(1, 2 ** 30)
  const before = Y.encodeStateVector(doc)
  const life = rng.pick([1, 2, 3, 0, -1, 1.5])
  const column = rng.chance(0.8) ? rng.pick(columns) : hostileKey(rng)
  doc.transact(() => {
    for (let k = rng.int(1, 3); k > 0; k--) {
      try {
        yjsEdit(rng, doc, life, column)
      } catch {
        // Yjs itself refuses some edits (a root type under a name taken by another type): skip it.
      }
    }
  })
  let delta: Uint8Array
  try {
    delta = Y.encodeStateAsUpdate(doc, before)
  } catch {
    // A value Yjs took but cannot encode (an object posing as bytes): a delta from nothing instead.
    delta = stored === null ? new Uint8Array([0, 0]) : hostileYjsDelta(rng, null, columns)
  }
  doc.destroy()
  return delta
}

/** One edit of a row's Yjs maps and texts, past the table API. */
function yjsEdit(rng: Rng, doc: Y.Doc, life: number, column: string): void {
  switch (rng.int(0, 6)) {
    case 0:
      doc.getMap('r').set(`${life}:${column}`, hostileValue(rng) as never)
      break
    case 1:
      doc.getMap('n').set(`${life}:${column}:${rng.chance(0.5) ? doc.clientID : rng.int(1, 99)}`, rng.pick([NaN, 1.5, -Infinity, 2 ** 60, 'x', -3, 7]) as never)
      break
    case 2:
      doc.getMap('l').set(String(rng.chance(0.5) ? doc.clientID : rng.int(1, 99)), rng.pick([NaN, 2, 3, 1.5, -1, 2 ** 53, 'x', 1e6]) as never)
      break
    case 3:
      doc.getText(`t:${life}:${column}`).insert(0, rng.pick(['x', 'y'.repeat(rng.int(1, 5000)), '\u0000']))
      break
    case 4:
      doc.getMap(rng.pick(['zz', 'R', 't', ''])).set('k', hostileValue(rng) as never)
      break
    case 5:
      doc.getArray('r').insert(0, [1])
      break
    default: {
      const map = doc.getMap(rng.pick(['r', 'n', 'l']))
      const keys = [...map.keys()]
      if (keys.length > 0) map.delete(rng.pick(keys))
    }
  }
}

/** An Automerge change written straight into a stored row's keys by another actor. */
export function hostileAutomergeDelta(rng: Rng, stored: Uint8Array | null, columns: readonly string[]): Uint8Array {
  const actor = Array.from({ length: 16 }, () => rng.int(0, 255).toString(16).padStart(2, '0')).join('')
  let doc = stored === null ? A.init<Record<string, unknown>>({ actor }) : A.load<Record<string, unknown>>(stored, { actor })
  const life = rng.pick([1, 2, 3, 0, -1, 1.5])
  const column = rng.chance(0.8) ? rng.pick(columns) : hostileKey(rng)
  try {
    doc = A.change(doc, (d) => {
      for (let k = rng.int(1, 3); k > 0; k--) {
        switch (rng.int(0, 5)) {
          case 0:
            d[`r:${life}:${column}`] = rng.chance(0.5) ? new A.ImmutableString(rng.pick(['{', '1e999', 'null', '"x"', '[1]', '{"__proto__":1}', '9'.repeat(400)])) : toAutomergeValue(hostileValue(rng))
            break
          case 1:
            d[`n:${life}:${column}`] = rng.chance(0.5) ? new A.Counter(rng.pick([1.5, 2 ** 60, -7, 0])) : toAutomergeValue(hostileValue(rng))
            break
          case 2:
            d[`l:${rng.chance(0.5) ? actor : 'ab'}`] = rng.pick([2, 3, 1.5, -1, 2 ** 53, 'x', 1e6, 0])
            break
          case 3:
            d[`t:${life}:${column}`] = rng.pick(['x', 'y'.repeat(rng.int(1, 5000))])
            break
          case 4:
            d[rng.pick(['zz', 'r:', 'n:1', 'l:'])] = toAutomergeValue(hostileValue(rng))
            break
          default: {
            const keys = Object.keys(d)
            if (keys.length > 0) delete d[rng.pick(keys)]
          }
        }
      }
    })
  } catch {
    // A value Automerge itself cannot hold (undefined, NaN in some positions): a one-key change instead.
    doc = A.change(doc, (d) => {
      d[`r:1:${column}`] = 1
    })
  }
  if (rng.chance(0.05)) {
    // A root key '__proto__': the proxies refuse it, a hand-made change does not.
    const heads = A.getHeads(doc)
    const backend = A.getBackend(doc)
    if (rng.chance(0.5)) backend.put(backend.putObject('_root', '__proto__', {}), `n:1:${column}`, 5)
    else backend.put('_root', '__proto__', rng.pick(['x', null, 3]))
    const bytes = A.saveSince(doc, heads)
    A.free(doc)
    return bytes
  }
  const change = A.getLastLocalChange(doc)
  const bytes = change ?? A.save(doc)
  A.free(doc)
  return bytes
}

/** Automerge has no undefined: it becomes null; everything else is tried as it is. */
function toAutomergeValue(value: unknown): unknown {
  if (value === undefined) return null
  if (Array.isArray(value)) return value.map(toAutomergeValue)
  if (value instanceof Uint8Array) return value
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toAutomergeValue(v)]))
  return value
}

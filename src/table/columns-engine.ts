import { MAX_CAUSAL_LENGTH, MAX_COLUMNS } from '../constants.js'
import { DeltaError, ValidationError } from '../errors.js'
import { decodeCbor, encodeCbor, type CborItem } from './columns-cbor.js'
import type { ApplyResult, EngineCells, EngineContext, EngineDoc, EngineWriter, RowEngine } from './engine.js'

/*
 * The `columns` engine: a row as a handful of small CRDTs, one per cell, for tables without text
 * columns (text needs a sequence CRDT: Yjs or Automerge). No document library, no per-row
 * transaction: a change is a few map writes and a delta of a few dozen bytes.
 *
 *   - causal length: the maximum any replica wrote (row.ts gives it its meaning);
 *   - a register (per life and column): last writer wins by (Lamport clock, actor id), the same
 *     winner on every replica; a change's Lamport clock is one more than any the row has seen, so
 *     a write made after seeing another wins over it;
 *   - a counter (per life and column): per actor, that actor's running total with the sequence
 *     number of its last change (the higher wins), and the value is the sum over actors;
 *   - per actor, the highest sequence number it has used in this row (the higher wins).
 * Each is a join-semilattice, so merging is commutative, associative and idempotent; equal sets of
 * changes give equal rows. A delta is the cells a change wrote (or, for a repair, the cells newer
 * than the asker's version) in the row's own format; a delta never depends on another, so nothing
 * is ever pending.
 *
 * Encoding (CBOR, canonical: equal states give equal bytes, which is also what the digest hashes):
 *   [1, causalLength, actors[], seqs[], registers[], counters[]]
 *   actors:    actor ids, sorted; the other arrays name an actor by its index here
 *   seqs:      [actor, highest seq, …]
 *   registers: [life, column, JSON of the value, lamport, actor, seq, …], by (life, column)
 *   counters:  [life, column, actor, total, seq, …], by (life, column, actor id)
 * Register values travel as JSON text: JSON.parse makes a key `__proto__` an own property, never a
 * prototype (a CBOR map decoded into an object could).
 */

const FORMAT = 1
/** Actors one row may name (writers of its cells): a row written by more is refused. */
export const MAX_ROW_ACTORS = 4096
/** Cells one row may hold, over all its lives. */
export const MAX_ROW_CELLS = 100_000
const MAX_ACTOR_CHARS = 256
/**
 * Highest Lamport clock and sequence number taken from a peer. A writer advances them by one per
 * change, so no honest row gets near; a peer sending more is refused, which leaves every replica
 * room to write after it (past MAX_SAFE_INTEGER the numbers would stop being exact, and rows
 * holding them could no longer be read back).
 */
export const MAX_STAMP = 2 ** 50
const MAX_SEQ = MAX_STAMP

interface Register {
  value: unknown
  /** The value's JSON, as it travels and is hashed. */
  json: string
  lamport: number
  actor: string
  seq: number
}

interface Contribution {
  total: number
  seq: number
}

interface Life {
  registers: Map<string, Register>
  /** column → actor → that actor's running total. */
  counters: Map<string, Map<string, Contribution>>
}

/** What a delta or a row's bytes hold, checked. */
interface Parsed {
  cl: number
  seqs: Map<string, number>
  registers: Array<{ life: number; column: string } & Register>
  counters: Array<{ life: number; column: string; actor: string } & Contribution>
  /**
   * Set by parse: the bytes are exactly what encodeParsed writes for what they hold (shortest
   * CBOR, every list in order, no actor listed that nothing names), so a row made of them alone
   * can keep them as its encoding.
   */
  canonical?: boolean
}

function fail(message: string): never {
  throw new DeltaError(`not a row of the columns engine: ${message}`)
}

function isCount(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max
}

function parse(bytes: Uint8Array): Parsed {
  let raw: unknown
  let canonical: boolean
  try {
    ;({ value: raw, canonical } = decodeCbor(bytes))
  } catch (error) {
    fail(`undecodable CBOR (${(error as Error).message})`)
  }
  if (!Array.isArray(raw) || raw.length !== 6) fail('expected [format, causal length, actors, seqs, registers, counters]')
  const [format, cl, actors, seqs, registers, counters] = raw as unknown[]
  if (format !== FORMAT) fail(`format ${String(format)}, expected ${FORMAT}`)
  if (!isCount(cl, MAX_CAUSAL_LENGTH)) fail('causal length is not an integer in range')
  if (!Array.isArray(actors) || actors.length > MAX_ROW_ACTORS) fail(`actors must be a list of at most ${MAX_ROW_ACTORS}`)
  for (let i = 0; i < actors.length; i++) {
    const a = actors[i] as unknown
    if (typeof a !== 'string' || a.length === 0 || a.length > MAX_ACTOR_CHARS) fail('an actor id is not a short non-empty string')
    if (i > 0 && !((actors[i - 1] as string) < a)) canonical = false
  }
  const named = new Uint8Array(actors.length)
  const actorAt = (i: unknown): string => {
    if (!isCount(i, actors.length - 1)) fail(`actor index ${String(i)} out of range`)
    named[i] = 1
    return actors[i] as string
  }
  if (!Array.isArray(seqs) || seqs.length % 2 !== 0) fail('seqs must be [actor, seq] pairs')
  if (!Array.isArray(registers) || registers.length % 6 !== 0) fail('registers must be groups of 6')
  if (!Array.isArray(counters) || counters.length % 5 !== 0) fail('counters must be groups of 5')
  if ((registers.length / 6 + counters.length / 5) > MAX_ROW_CELLS) fail(`more than ${MAX_ROW_CELLS} cells`)
  const out: Parsed = { cl, seqs: new Map(), registers: [], counters: [] }
  for (let i = 0; i < seqs.length; i += 2) {
    const seq = seqs[i + 1]
    if (!isCount(seq, MAX_SEQ)) fail('a sequence number is not a safe integer')
    // A row keeps no zero sequence number, and lists each actor once, in actor order.
    if (seq === 0 || (i > 0 && !((seqs[i - 2] as number) < (seqs[i] as number)))) canonical = false
    out.seqs.set(actorAt(seqs[i]), seq)
  }
  const checkCell = (life: unknown, column: unknown): void => {
    if (!isCount(life, MAX_CAUSAL_LENGTH) || life === 0) fail('a cell names life 0 or one out of range')
    if (typeof column !== 'string' || column.length === 0 || column.length > 64) fail('a cell names no valid column')
  }
  for (let i = 0; i < registers.length; i += 6) {
    const life = registers[i] as unknown
    const column = registers[i + 1] as unknown
    const json = registers[i + 2] as unknown
    const lamport = registers[i + 3] as unknown
    const seq = registers[i + 5] as unknown
    checkCell(life, column)
    if (typeof json !== 'string') fail('a register value is not JSON text')
    let value: unknown
    try {
      value = JSON.parse(json)
    } catch {
      fail('a register value is not valid JSON')
    }
    if (!isCount(lamport, MAX_SEQ) || !isCount(seq, MAX_SEQ)) fail('a register stamp is not a safe integer')
    const previous = out.registers[out.registers.length - 1]
    if (previous !== undefined && !(previous.life < (life as number) || (previous.life === life && previous.column < (column as string)))) canonical = false
    out.registers.push({ life: life as number, column: column as string, value, json, lamport, actor: actorAt(registers[i + 4]), seq })
  }
  for (let i = 0; i < counters.length; i += 5) {
    const life = counters[i] as unknown
    const column = counters[i + 1] as unknown
    const total = counters[i + 3] as unknown
    const seq = counters[i + 4] as unknown
    checkCell(life, column)
    if (typeof total !== 'number' || !Number.isSafeInteger(total)) fail('a counter total is not a safe integer')
    if (!isCount(seq, MAX_SEQ)) fail('a counter stamp is not a safe integer')
    const actor = actorAt(counters[i + 2])
    const previous = out.counters[out.counters.length - 1]
    if (previous !== undefined && !(previous.life < (life as number) || (previous.life === life && (previous.column < (column as string) || (previous.column === column && previous.actor < actor))))) canonical = false
    out.counters.push({ life: life as number, column: column as string, actor, total, seq })
  }
  out.canonical = canonical && named.every((n) => n === 1)
  return out
}

/** Register order: the higher (lamport, actor) wins. */
function beats(a: Register, b: Register): boolean {
  return a.lamport !== b.lamport ? a.lamport > b.lamport : a.actor > b.actor
}

class ColumnsDoc implements EngineDoc {
  private cl = 0
  private readonly lifeMap = new Map<number, Life>()
  private readonly seqs = new Map<string, number>()
  private lamport = 0
  private cells = 0
  /** Encoding of the current state, until it changes. */
  private encoded: Uint8Array | null = null

  constructor(private readonly actor: string) {}

  causalLength(): number {
    return this.cl
  }

  read(life: number): EngineCells {
    const cells: EngineCells = { registers: new Map(), counters: new Map(), texts: new Map() }
    const l = this.lifeMap.get(life)
    if (l === undefined) return cells
    for (const [column, r] of l.registers) cells.registers.set(column, r.value)
    for (const [column, byActor] of l.counters) {
      let sum = 0
      for (const c of byActor.values()) sum += c.total
      cells.counters.set(column, sum)
    }
    return cells
  }

  lives(): number[] {
    return [...this.lifeMap.keys()]
  }

  conflicts(): Map<string, unknown[]> {
    return new Map()
  }

  textLength(): number {
    return 0
  }

  change(writes: (w: EngineWriter) => void): Uint8Array | null {
    const seq = (this.seqs.get(this.actor) ?? 0) + 1
    const lamport = this.lamport + 1
    if (seq > MAX_STAMP || lamport > MAX_STAMP) throw new ValidationError(`this row's clocks have reached ${MAX_STAMP} (a peer sent stamps no honest writer makes); it cannot take more writes`)
    const delta: Parsed = { cl: 0, seqs: new Map([[this.actor, seq]]), registers: [], counters: [] }
    let wrote = false
    writes({
      setCausalLength: (length) => {
        if (length > delta.cl) delta.cl = length
        wrote = true
      },
      setRegister: (life, column, value) => {
        const json = JSON.stringify(value ?? null)
        const i = delta.registers.findIndex((r) => r.life === life && r.column === column)
        // The row keeps its own copy of an object (the caller may change theirs), and what JSON makes
        // of anything else it cannot hold as it is (NaN → null); a plain primitive is its own copy.
        const plain = value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
        const kept = plain ? value : (JSON.parse(json) as unknown)
        const entry = { life, column, value: kept, json, lamport, actor: this.actor, seq }
        if (i >= 0) delta.registers[i] = entry
        else delta.registers.push(entry)
        wrote = true
      },
      increment: (life, column, by) => {
        const previous = delta.counters.find((c) => c.life === life && c.column === column)
        if (previous !== undefined) previous.total += by
        else delta.counters.push({ life, column, actor: this.actor, total: (this.lifeMap.get(life)?.counters.get(column)?.get(this.actor)?.total ?? 0) + by, seq })
        wrote = true
      },
      spliceText: () => {
        throw new DeltaError('the columns engine has no text cells: give a table with text columns the yjs or automerge engine')
      },
    })
    if (!wrote) return null
    const empty = this.cl === 0 && this.seqs.size === 0 && this.cells === 0
    delta.cl = Math.max(delta.cl, this.cl)
    this.merge(delta)
    const bytes = encodeParsed(delta)
    // A new row is its first change: the state's encoding is those bytes (encodeParsed is canonical).
    if (empty) this.encoded = bytes
    return bytes
  }

  applyDelta(delta: Uint8Array): ApplyResult {
    const p = parse(delta)
    const empty = this.cl === 0 && this.seqs.size === 0 && this.cells === 0
    if (!this.merge(p)) return 'unchanged'
    // A row new here made of one canonical delta (a new row from a peer, a stored row read back)
    // is those bytes: keep a copy instead of encoding it again (and not a view, which would keep
    // the whole received frame alive).
    if (empty && p.canonical === true) this.encoded = delta.slice()
    return 'changed'
  }

  /**
   * [causal length, [actor, highest seq, [seqs of the changes whose cells this row holds]]…]: a
   * replica lacks exactly the cells stamped with a change it does not list (a change's cells are
   * held, or beaten by a later write, together), so deltaSince sends just those.
   */
  version(): Uint8Array {
    const stamps = this.stamps()
    const actors: unknown[] = []
    for (const actor of [...new Set([...this.seqs.keys(), ...stamps.keys()])].sort()) {
      actors.push([actor, this.seqs.get(actor) ?? 0, [...(stamps.get(actor) ?? [])].sort((a, b) => a - b)])
    }
    return encodeCbor([this.cl, actors] as CborItem)
  }

  holdsAll(version: Uint8Array): boolean {
    // Each change they list is listed here too (its cells held, or beaten by later ones held
    // here), and nothing of theirs is further along: they have nothing to send.
    const theirs = parseVersion(version)
    if (theirs.cl > this.cl) return false
    for (const [actor, seq] of theirs.seqs) if (seq > (this.seqs.get(actor) ?? 0)) return false
    const mine = this.stamps()
    for (const [actor, seqs] of theirs.stamps) {
      const held = mine.get(actor)
      for (const seq of seqs) if (held?.has(seq) !== true) return false
    }
    return true
  }

  deltaSince(version: Uint8Array): Uint8Array | null {
    const theirs = parseVersion(version)
    const lacks = (actor: string, seq: number): boolean => theirs.stamps.get(actor)?.has(seq) !== true
    const delta: Parsed = { cl: this.cl, seqs: new Map([...this.seqs].filter(([a, s]) => s > (theirs.seqs.get(a) ?? 0))), registers: [], counters: [] }
    for (const [life, l] of this.lifeMap) {
      for (const [column, r] of l.registers) if (lacks(r.actor, r.seq)) delta.registers.push({ life, column, ...r })
      for (const [column, byActor] of l.counters) for (const [actor, c] of byActor) if (lacks(actor, c.seq)) delta.counters.push({ life, column, actor, ...c })
    }
    if (this.cl <= theirs.cl && delta.seqs.size === 0 && delta.registers.length === 0 && delta.counters.length === 0) return null
    return encodeParsed(delta)
  }

  encode(): Uint8Array {
    if (this.encoded === null) {
      const all: Parsed = { cl: this.cl, seqs: this.seqs, registers: [], counters: [] }
      for (const [life, l] of this.lifeMap) {
        for (const [column, r] of l.registers) all.registers.push({ life, column, ...r })
        for (const [column, byActor] of l.counters) for (const [actor, c] of byActor) all.counters.push({ life, column, actor, ...c })
      }
      this.encoded = encodeParsed(all)
    }
    return this.encoded
  }

  canonicalState(): Uint8Array {
    return this.encode()
  }

  dispose(): void {}

  /** Joins `p` into the state; true if anything moved. */
  private merge(p: Parsed): boolean {
    let changed = false
    if (p.cl > this.cl) {
      this.cl = p.cl
      changed = true
    }
    const actors = new Set(this.seqs.keys())
    for (const [actor, seq] of p.seqs) {
      actors.add(actor)
      if (seq > (this.seqs.get(actor) ?? 0)) {
        this.seqs.set(actor, seq)
        changed = true
      }
    }
    for (const r of p.registers) actors.add(r.actor)
    for (const c of p.counters) actors.add(c.actor)
    if (actors.size > MAX_ROW_ACTORS) throw new DeltaError(`the row would name more than ${MAX_ROW_ACTORS} actors`)
    for (const r of p.registers) {
      const life = this.life(r.life)
      const current = life.registers.get(r.column)
      if (r.lamport > this.lamport) this.lamport = r.lamport
      if (current !== undefined && !beats(r, current)) continue
      if (current === undefined) this.countCell()
      life.registers.set(r.column, { value: r.value, json: r.json, lamport: r.lamport, actor: r.actor, seq: r.seq })
      changed = true
    }
    for (const c of p.counters) {
      const life = this.life(c.life)
      let byActor = life.counters.get(c.column)
      if (byActor === undefined) {
        if (life.counters.size + life.registers.size >= MAX_COLUMNS * 2) throw new DeltaError(`a life of the row would hold more than ${MAX_COLUMNS * 2} columns`)
        byActor = new Map()
        life.counters.set(c.column, byActor)
      }
      const current = byActor.get(c.actor)
      if (current !== undefined && current.seq >= c.seq) continue
      if (current === undefined) this.countCell()
      byActor.set(c.actor, { total: c.total, seq: c.seq })
      changed = true
    }
    if (changed) this.encoded = null
    return changed
  }

  /** actor → the sequence numbers of the changes whose cells this row holds. */
  private stamps(): Map<string, Set<number>> {
    const stamps = new Map<string, Set<number>>()
    const add = (actor: string, seq: number): void => {
      let set = stamps.get(actor)
      if (set === undefined) stamps.set(actor, (set = new Set()))
      set.add(seq)
    }
    for (const l of this.lifeMap.values()) {
      for (const r of l.registers.values()) add(r.actor, r.seq)
      for (const byActor of l.counters.values()) for (const [actor, c] of byActor) add(actor, c.seq)
    }
    return stamps
  }

  private life(n: number): Life {
    let life = this.lifeMap.get(n)
    if (life === undefined) {
      life = { registers: new Map(), counters: new Map() }
      this.lifeMap.set(n, life)
    }
    return life
  }

  private countCell(): void {
    if (++this.cells > MAX_ROW_CELLS) throw new DeltaError(`the row would hold more than ${MAX_ROW_CELLS} cells`)
  }
}

function parseVersion(version: Uint8Array): { cl: number; seqs: Map<string, number>; stamps: Map<string, Set<number>> } {
  const bad = (): never => {
    throw new DeltaError('not a version of the columns engine: expected [causal length, [actor, highest seq, [seqs]]…]')
  }
  let raw: unknown
  try {
    raw = decodeCbor(version).value
  } catch {
    bad()
  }
  if (!Array.isArray(raw) || raw.length !== 2 || !isCount(raw[0], MAX_CAUSAL_LENGTH) || !Array.isArray(raw[1]) || raw[1].length > MAX_ROW_ACTORS) return bad()
  const out = { cl: raw[0], seqs: new Map<string, number>(), stamps: new Map<string, Set<number>>() }
  for (const entry of raw[1] as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 3 || typeof entry[0] !== 'string' || !isCount(entry[1], MAX_SEQ) || !Array.isArray(entry[2]) || entry[2].length > MAX_ROW_CELLS) return bad()
    const seqs = entry[2] as unknown[]
    if (!seqs.every((s) => isCount(s, MAX_SEQ))) return bad()
    out.seqs.set(entry[0], entry[1])
    out.stamps.set(entry[0], new Set(seqs as number[]))
  }
  return out
}

function encodeParsed(p: Parsed): Uint8Array {
  const actors = new Set(p.seqs.keys())
  for (const r of p.registers) actors.add(r.actor)
  for (const c of p.counters) actors.add(c.actor)
  const sorted = [...actors].sort()
  const index = new Map(sorted.map((a, i) => [a, i]))
  const seqs: unknown[] = []
  for (const a of sorted) if (p.seqs.has(a)) seqs.push(index.get(a)!, p.seqs.get(a)!)
  const registers: unknown[] = []
  for (const r of [...p.registers].sort((a, b) => a.life - b.life || (a.column < b.column ? -1 : a.column > b.column ? 1 : 0))) {
    registers.push(r.life, r.column, r.json, r.lamport, index.get(r.actor)!, r.seq)
  }
  const counters: unknown[] = []
  for (const c of [...p.counters].sort((a, b) => a.life - b.life || (a.column < b.column ? -1 : a.column > b.column ? 1 : 0) || (a.actor < b.actor ? -1 : a.actor > b.actor ? 1 : 0))) {
    counters.push(c.life, c.column, index.get(c.actor)!, c.total, c.seq)
  }
  return encodeCbor([FORMAT, p.cl, sorted, seqs, registers, counters] as CborItem)
}

export const columnsEngine: RowEngine = {
  name: 'columns',
  checkAuthor(delta: Uint8Array, actor: string): void {
    const p = parse(delta)
    for (const a of p.seqs.keys()) if (a !== actor) throw new DeltaError(`the delta advances the changes of '${a}', not only of its author '${actor}'`)
    for (const r of p.registers) if (r.actor !== actor) throw new DeltaError(`the delta writes register '${r.column}' in the name of '${r.actor}', not its author '${actor}'`)
    for (const c of p.counters) if (c.actor !== actor) throw new DeltaError(`the delta writes counter '${c.column}' in the name of '${c.actor}', not its author '${actor}'`)
  },
  create(context: EngineContext): EngineDoc {
    return new ColumnsDoc(context.actor)
  },
  decode(bytes: Uint8Array, context: EngineContext): EngineDoc {
    const doc = new ColumnsDoc(context.actor)
    doc.applyDelta(bytes)
    return doc
  },
}

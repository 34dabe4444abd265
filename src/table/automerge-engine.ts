import * as A from '@automerge/automerge/slim'
import './automerge-wasm.js'
import { MAX_ROW_OPS, MAX_ROW_VALUE_BYTES } from '../constants.js'
import { DeltaError } from '../errors.js'
import { automergeChanges, measureAutomerge } from './automerge-chunks.js'
import type { ApplyResult, EngineCells, EngineContext, EngineDoc, EngineWriter, RowEngine } from './engine.js'
import { concatBytes, fromHex, hashText, toHex } from './hash.js'

/*
 * Layout of a row in one Automerge document (flat root keys):
 *   'l:<actor>'          causal length that actor set (read: the maximum)
 *   'r:<life>:<column>'  register: JSON text in an ImmutableString (last writer wins; losers kept as conflicts)
 *   'n:<life>:<column>'  A.Counter (concurrent increments add up)
 *   't:<life>:<column>'  Automerge text
 *
 * Counters and texts are objects that must be created exactly once: two replicas creating the
 * same key concurrently would produce two objects, and one of them (with its increments or
 * edits) would lose. So they are created by a *genesis change*, identical on every replica: made
 * by an actor derived from the key, with no dependencies and timestamp 0. Replicas that create
 * it independently produce the same change hash, which Automerge stores once.
 */

type RowRecord = Record<string, unknown>

const GENESIS_CACHE_LIMIT = 4096
const genesisCache = new Map<string, Uint8Array>()

/** The actor of the genesis change that creates the counter or text object at `key`. */
function genesisActor(key: string): string {
  return toHex(hashText(`shoal-genesis\u0000${key}`).subarray(0, 16))
}

function genesisChange(key: string, initial: () => unknown): Uint8Array {
  let change = genesisCache.get(key)
  if (change === undefined) {
    const actor = genesisActor(key)
    const seed = A.change(A.init<RowRecord>({ actor }), { time: 0 }, (d) => {
      d[key] = initial()
    })
    change = A.getLastLocalChange(seed)!
    A.free(seed)
    if (genesisCache.size >= GENESIS_CACHE_LIMIT) genesisCache.delete(genesisCache.keys().next().value!)
    genesisCache.set(key, change)
  }
  return change
}

/**
 * Automerge materialises a document by assigning its keys, so a root key '__proto__' holding an
 * object or a string (which only a peer's hand-made change can write: the proxies refuse it) sets
 * the row's prototype, and a key the row does not hold then reads through to it: a counter that is
 * not there would look present. The caller restores the row on the DeltaError.
 */
function checkRootPrototype(doc: A.Doc<RowRecord>): void {
  if (Object.getPrototypeOf(doc) !== Object.prototype) throw new DeltaError("the row holds a root key '__proto__', which an Automerge row may not hold")
}

export function automergeActorId(actor: string): string {
  return toHex(hashText(actor).subarray(0, 16))
}

type Write =
  | { kind: 'life'; length: number }
  | { kind: 'register'; key: string; value: unknown }
  | { kind: 'increment'; key: string; by: number }
  | { kind: 'splice'; key: string; index: number; deleteCount: number; insert: string }

const HEAD_BYTES = 32

class AutomergeDoc implements EngineDoc {
  private doc: A.Doc<RowRecord>
  private readonly actorHex: string
  private readonly nowSeconds: (() => number) | undefined

  constructor(context: EngineContext, bytes?: Uint8Array) {
    this.actorHex = automergeActorId(context.actor)
    this.nowSeconds = context.nowSeconds
    if (bytes === undefined) {
      this.doc = A.init<RowRecord>({ actor: this.actorHex })
    } else {
      measureAutomerge(bytes, { maxOps: MAX_ROW_OPS, maxValueBytes: MAX_ROW_VALUE_BYTES })
      try {
        this.doc = A.load<RowRecord>(bytes, { actor: this.actorHex })
      } catch (error) {
        throw new DeltaError('bytes are not an Automerge row document', { cause: error })
      }
      checkRootPrototype(this.doc)
    }
  }

  causalLength(): number {
    let max = 0
    for (const key of Object.keys(this.doc)) {
      if (!key.startsWith('l:')) continue
      const value = this.doc[key]
      if (typeof value === 'number' && value > max) max = value
    }
    return max
  }

  read(life: number): EngineCells {
    const registers = new Map<string, unknown>()
    const counters = new Map<string, number>()
    const texts = new Map<string, string>()
    const suffix = `${life}:`
    for (const [key, value] of Object.entries(this.doc)) {
      const kind = key.slice(0, 2)
      if (!key.startsWith(suffix, 2)) continue
      const column = key.slice(2 + suffix.length)
      if (kind === 'r:') registers.set(column, decodeRegister(value))
      else if (kind === 'n:' && value instanceof A.Counter) counters.set(column, value.value)
      else if (kind === 't:' && typeof value === 'string') texts.set(column, value)
    }
    return { registers, counters, texts }
  }

  lives(): number[] {
    const lives = new Set<number>()
    for (const key of Object.keys(this.doc)) {
      const kind = key.slice(0, 2)
      if (kind !== 'r:' && kind !== 'n:' && kind !== 't:') continue
      const cut = key.indexOf(':', 2)
      if (cut > 2) lives.add(Number(key.slice(2, cut)))
    }
    return [...lives]
  }

  conflicts(life: number): Map<string, unknown[]> {
    const out = new Map<string, unknown[]>()
    const prefix = `r:${life}:`
    for (const key of Object.keys(this.doc)) {
      if (!key.startsWith(prefix)) continue
      const all = A.getConflicts(this.doc, key)
      if (all === undefined || Object.keys(all).length < 2) continue
      // getConflicts returns fresh ImmutableString objects, never the one the document reads, so
      // values are compared by their JSON text. A concurrent write of the winning value itself
      // lost nothing and is not listed.
      const winner = registerIdentity(this.doc[key])
      const losers = Object.values(all).filter((v) => registerIdentity(v) !== winner)
      if (losers.length > 0) out.set(key.slice(prefix.length), losers.map(decodeRegister))
    }
    return out
  }

  textLength(life: number, column: string): number {
    const value = this.doc[`t:${life}:${column}`]
    return typeof value === 'string' ? value.length : 0
  }

  change(writes: (w: EngineWriter) => void): Uint8Array | null {
    const planned: Write[] = []
    writes({
      setCausalLength: (length) => planned.push({ kind: 'life', length }),
      setRegister: (life, column, value) => planned.push({ kind: 'register', key: `r:${life}:${column}`, value }),
      increment: (life, column, by) => {
        if (by !== 0) planned.push({ kind: 'increment', key: `n:${life}:${column}`, by })
      },
      spliceText: (life, column, index, deleteCount, insert) => {
        if (deleteCount > 0 || insert.length > 0) planned.push({ kind: 'splice', key: `t:${life}:${column}`, index, deleteCount, insert })
      },
    })
    if (planned.length === 0) return null
    const heads = A.getHeads(this.doc)
    let doc = this.doc
    const geneses: Uint8Array[] = []
    for (const w of planned) {
      if (w.kind === 'increment' && !(doc[w.key] instanceof A.Counter)) geneses.push(genesisChange(w.key, () => new A.Counter(0)))
      if (w.kind === 'splice' && typeof doc[w.key] !== 'string') geneses.push(genesisChange(w.key, () => ''))
    }
    if (geneses.length > 0) [doc] = A.applyChanges(doc, geneses)
    const time = this.nowSeconds?.()
    doc = A.change(doc, time === undefined ? {} : { time }, (d) => {
      for (const w of planned) {
        switch (w.kind) {
          case 'life':
            d[`l:${this.actorHex}`] = w.length
            break
          case 'register':
            d[w.key] = new A.ImmutableString(JSON.stringify(w.value))
            break
          case 'increment':
            ;(d[w.key] as A.Counter).increment(w.by)
            break
          case 'splice':
            A.splice(d, [w.key], w.index, w.deleteCount, w.insert)
            break
        }
      }
    })
    this.doc = doc
    // Automerge makes no change for a write of the values a row already holds (a put repeating
    // them): that is no change here either. An empty delta would be gossiped, and peers refuse a
    // message holding one whole, with the other rows' deltas coalesced into it.
    if (sameHeads(heads, A.getHeads(doc))) return null
    return A.saveSince(doc, heads)
  }

  applyDelta(delta: Uint8Array): ApplyResult {
    // Measured before Automerge expands anything; what the row then holds is checked after.
    measureAutomerge(delta, { maxOps: MAX_ROW_OPS, maxValueBytes: MAX_ROW_VALUE_BYTES })
    const before = A.getHeads(this.doc)
    try {
      this.doc = A.loadIncremental(this.doc, delta)
    } catch (error) {
      throw new DeltaError('delta is not a valid Automerge change set', { cause: error })
    }
    checkRootPrototype(this.doc)
    const ops = A.stats(this.doc).numOps
    if (ops > MAX_ROW_OPS) throw new DeltaError(`the row would hold ${ops} Automerge operations, over the ${MAX_ROW_OPS} a row may hold`)
    const after = A.getHeads(this.doc)
    if (!sameHeads(before, after)) return 'changed'
    return A.getMissingDeps(this.doc, []).length > 0 ? 'pending' : 'unchanged'
  }

  version(): Uint8Array {
    return concatBytes(A.getHeads(this.doc).sort().map(fromHex))
  }

  holdsAll(version: Uint8Array): boolean {
    // Their heads are all in this history: every change they hold is here.
    return A.hasHeads(this.doc, headsOf(version))
  }

  deltaSince(version: Uint8Array): Uint8Array | null {
    const theirs = headsOf(version)
    // Heads we have never seen tell us nothing about what they lack; the heads we know do.
    const known = theirs.filter((h) => A.hasHeads(this.doc, [h]))
    const delta = A.saveSince(this.doc, known)
    return A.getChangesSince(this.doc, known).length === 0 ? null : delta
  }

  encode(): Uint8Array {
    return A.save(this.doc)
  }

  /** The sorted heads identify the whole causal history, hence the state. */
  canonicalState(): Uint8Array {
    return this.version()
  }

  dispose(): void {
    A.free(this.doc)
  }
}

/** The heads a version lists (the version of `version()`); DeltaError when it is not one. */
function headsOf(version: Uint8Array): string[] {
  if (version.length % HEAD_BYTES !== 0) throw new DeltaError(`an Automerge version is a list of ${HEAD_BYTES}-byte hashes`)
  const heads: string[] = []
  for (let i = 0; i < version.length; i += HEAD_BYTES) heads.push(toHex(version.subarray(i, i + HEAD_BYTES)))
  return heads
}

/** A register's stored JSON text (an ImmutableString as written here, or a plain string). */
function registerText(value: unknown): string | null {
  return value instanceof A.ImmutableString ? value.val : typeof value === 'string' ? value : null
}

/** What identifies a register value for comparison: its stored text, or (for anything else) its JSON. */
function registerIdentity(value: unknown): string {
  return registerText(value) ?? `\u0000${JSON.stringify(value ?? null)}`
}

function decodeRegister(value: unknown): unknown {
  const text = registerText(value)
  if (text === null) return value ?? null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

function sameHeads(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false
  const sb = [...b].sort()
  return [...a].sort().every((h, i) => h === sb[i])
}

/**
 * Every change in the delta is by `actor`'s Automerge actor, or is a genesis change (one
 * operation creating the counter or text at a key, by the actor derived from that key, with no
 * dependencies): identical on every replica, so anyone may ship it.
 */
function checkAutomergeAuthor(delta: Uint8Array, actor: string): void {
  const own = automergeActorId(actor)
  for (const change of automergeChanges(delta)) {
    if (change.actor === own) continue
    let decoded: A.DecodedChange
    try {
      decoded = A.decodeChange(change.bytes)
    } catch (error) {
      throw new DeltaError('delta holds a change Automerge cannot decode', { cause: error })
    }
    const [op] = decoded.ops
    const genesis = decoded.ops.length === 1 && decoded.deps.length === 0 && decoded.seq === 1 && typeof op?.key === 'string' && genesisActor(op.key) === change.actor
    if (!genesis) throw new DeltaError(`delta carries a change of Automerge actor ${change.actor}, not of its author (actor ${own})`)
  }
}

export const automergeEngine: RowEngine = {
  name: 'automerge',
  checkAuthor: checkAutomergeAuthor,
  create: (context) => new AutomergeDoc(context),
  decode: (bytes, context) => new AutomergeDoc(context, bytes),
}

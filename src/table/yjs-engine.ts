import * as Y from 'yjs'
import { DeltaError } from '../errors.js'
import type { ApplyResult, EngineCells, EngineContext, EngineDoc, EngineWriter, RowEngine } from './engine.js'
import { hashText } from './hash.js'

/*
 * Layout of a row in one Y.Doc (all root types, so replicas that create the same row
 * independently still merge: Yjs root types are identified by name):
 *   map 'l'                   clientID → causal length that client set (read: the maximum)
 *   map 'r'                   "<life>:<column>" → register value (Y.Map: last writer wins)
 *   map 'n'                   "<life>:<column>:<clientID>" → that client's running total (read: the sum)
 *   text 't:<life>:<column>'  collaborative text
 * Yjs has no counter type; per-client totals written only by their owner merge exactly.
 */

const LIVES = 'l'
const REGISTERS = 'r'
const COUNTERS = 'n'
const TEXT_PREFIX = 't:'

/**
 * A stable Yjs client id per peer. Yjs requires that one client id never writes from two
 * diverging states; Shoal guarantees it: a peer has one live document per row and only ever
 * shares persisted state. 48 bits keep accidental collisions between peers negligible.
 */
const clientIds = new Map<string, number>()

export function yjsClientId(actor: string): number {
  let id = clientIds.get(actor)
  if (id === undefined) {
    id = deriveClientId(actor)
    if (clientIds.size > 1024) clientIds.clear()
    clientIds.set(actor, id)
  }
  return id
}

function deriveClientId(actor: string): number {
  const h = hashText(actor)
  return ((h[0]! * 2 ** 40 + h[1]! * 2 ** 32 + h[2]! * 2 ** 24 + ((h[3]! << 16) | (h[4]! << 8) | h[5]!)) % 2 ** 48) + 1
}

/** An entry's current value, as Y.Map#get reads it (undefined once deleted). */
function liveValue(item: Y.Item): unknown {
  return item.deleted ? undefined : (item.content.getContent()[item.length - 1] as unknown)
}

const keepAll = (): boolean => true

/**
 * A Y.Doc as a row needs it. Shoal keeps thousands live (the row cache), so two defaults that cost
 * every instance are dropped: the 'load'/'sync' listeners and closures behind whenLoaded and
 * whenSynced (providers' events, which a row never gets), ~1 KB a document; and ObservableV2's
 * emit, which allocates a Map and an array for each of the ~6 events a transaction emits even
 * with no listener.
 */
class RowYDoc extends Y.Doc {
  constructor() {
    // A guid avoids Yjs generating a random uuid per document, which costs ~100 µs.
    super({ guid: 'row', gc: true, gcFilter: keepAll })
    this._observers.clear()
  }

  override emit(name: string, args: unknown[]): void {
    const observers = (this._observers as Map<string, Set<(...a: unknown[]) => void>>).get(name)
    if (observers === undefined) return
    // Copied first, as ObservableV2 does: a listener added while emitting is not called.
    for (const f of [...observers]) f(...args)
  }
}

/**
 * Refuses an update Yjs would take in but that would break the row later:
 *   - an empty range (a struct or a deleted range of length 0). Yjs reads one from the (version 1)
 *     wire format and applies it, but a range of it it cannot apply yet is kept pending and saved
 *     with the row, and Yjs then fails on every later load of that row ("Unexpected case"): one
 *     such delta from a peer would make the row unreadable for good;
 *   - a value holding an object key '__proto__'. Yjs's decoder assigns keys, so that one sets the
 *     object's prototype: {"__proto__": <bytes>} arrives as an object posing as a Uint8Array, on
 *     which Yjs's own encoder throws, and other prototypes give values that encode differently
 *     from how they read. (A primitive there is dropped by the assignment itself.)
 */
function checkStructure(delta: Uint8Array): void {
  let decoded: { structs: Array<{ length: number; content?: unknown }>; ds: { clients: Map<number, Array<{ len: number }>> } }
  try {
    decoded = Y.decodeUpdate(delta)
  } catch (error) {
    throw new DeltaError('delta is not a valid Yjs update', { cause: error })
  }
  for (const struct of decoded.structs) {
    if (!(struct.length > 0)) throw new DeltaError('delta holds a Yjs struct of length 0')
    const content = struct.content
    if (content instanceof Y.ContentAny) content.arr.forEach(checkPrototypes)
    else if (content instanceof Y.ContentEmbed) checkPrototypes(content.embed)
    else if (content instanceof Y.ContentFormat) checkPrototypes(content.value)
  }
  for (const ranges of decoded.ds.clients.values()) {
    if (ranges.some((r) => !(r.len > 0))) throw new DeltaError('delta deletes an empty range of a Yjs document')
  }
}

function checkPrototypes(value: unknown, depth = 0): void {
  if (value === null || typeof value !== 'object') return
  // Deeper than any value a row accepts (the row check refuses it): no need to look further.
  if (depth > 64) return
  if (Array.isArray(value)) {
    for (const item of value) checkPrototypes(item, depth + 1)
    return
  }
  if (value instanceof Uint8Array && ArrayBuffer.isView(value)) return
  const proto = Object.getPrototypeOf(value) as unknown
  if (proto !== Object.prototype && proto !== null) throw new DeltaError("delta holds a value with an object key '__proto__'; such values cannot be stored")
  for (const item of Object.values(value)) checkPrototypes(item, depth + 1)
}

class YjsDoc implements EngineDoc {
  private doc: Y.Doc
  /** The encoded document when the last change or delta was all it holds (saves an encode). */
  private wholeDoc: Uint8Array | null = null
  /** The causal length, while known (-1: read it again); only change() and applyDelta() move it. */
  private length = -1
  private readonly clientId: number

  constructor(context: EngineContext, bytes?: Uint8Array) {
    this.clientId = yjsClientId(context.actor)
    this.doc = new RowYDoc()
    if (bytes !== undefined) {
      try {
        Y.applyUpdate(this.doc, bytes)
      } catch (error) {
        throw new DeltaError('bytes are not a Yjs row document', { cause: error })
      }
    }
    // Set after loading: Yjs gives up a client id that arrives in a remote update it did not
    // make (it then assumes another replica uses it), and loading is such an update.
    this.doc.clientID = this.clientId
  }

  causalLength(): number {
    if (this.length < 0) {
      let max = 0
      const lives = this.items(LIVES)
      if (lives !== undefined) {
        for (const item of lives.values()) {
          const value = liveValue(item)
          if (typeof value === 'number' && value > max) max = value
        }
      }
      this.length = max
    }
    return this.length
  }

  read(life: number): EngineCells {
    const prefix = `${life}:`
    const registers = new Map<string, unknown>()
    const registerItems = this.items(REGISTERS)
    if (registerItems !== undefined) {
      for (const [key, item] of registerItems) {
        if (!key.startsWith(prefix) || item.deleted) continue
        registers.set(key.slice(prefix.length), liveValue(item))
      }
    }
    const counters = new Map<string, number>()
    const counterItems = this.items(COUNTERS)
    if (counterItems !== undefined) {
      for (const [key, item] of counterItems) {
        if (!key.startsWith(prefix)) continue
        const value = liveValue(item)
        if (typeof value !== 'number') continue
        const column = key.slice(prefix.length, key.lastIndexOf(':'))
        counters.set(column, (counters.get(column) ?? 0) + value)
      }
    }
    const texts = new Map<string, string>()
    const textPrefix = `${TEXT_PREFIX}${prefix}`
    for (const name of this.doc.share.keys()) {
      if (name.startsWith(textPrefix)) texts.set(name.slice(textPrefix.length), this.doc.getText(name).toString())
    }
    return { registers, counters, texts }
  }

  lives(): number[] {
    const lives = new Set<number>()
    const add = (key: string): void => {
      const cut = key.indexOf(':')
      if (cut > 0) lives.add(Number(key.slice(0, cut)))
    }
    for (const key of this.items(REGISTERS)?.keys() ?? []) add(key)
    for (const key of this.items(COUNTERS)?.keys() ?? []) add(key)
    for (const name of this.doc.share.keys()) if (name.startsWith(TEXT_PREFIX)) add(name.slice(TEXT_PREFIX.length))
    return [...lives]
  }

  /**
   * The item map of a root map, read directly: Y.Map#entries/values build two lib0 iterators and
   * an array per entry, the biggest CPU and garbage cost of reading a row. Looking it up in
   * `share` also leaves a document without that map as it is (getMap would create it).
   */
  private items(name: string): Map<string, Y.Item> | undefined {
    return this.doc.share.get(name)?._map
  }

  conflicts(_life: number): Map<string, unknown[]> {
    return new Map()
  }

  textLength(life: number, column: string): number {
    const name = `${TEXT_PREFIX}${life}:${column}`
    return this.doc.share.has(name) ? this.doc.getText(name).length : 0
  }

  change(writes: (w: EngineWriter) => void): Uint8Array | null {
    const doc = this.doc
    const client = doc.clientID
    const wasEmpty = this.isEmpty()
    let wrote = false
    // Yjs encodes just this transaction's structs for 'update' listeners: cheaper than diffing
    // the whole document against a state vector.
    let update: Uint8Array | null = null
    const capture = (u: Uint8Array): void => {
      update = u
    }
    doc.on('update', capture)
    try {
      doc.transact(() => {
        writes({
          setCausalLength(length) {
            doc.getMap(LIVES).set(String(client), length)
            wrote = true
          },
          setRegister(life, column, value) {
            doc.getMap(REGISTERS).set(`${life}:${column}`, value)
            wrote = true
          },
          increment(life, column, by) {
            if (by === 0) return
            const counters = doc.getMap(COUNTERS)
            const key = `${life}:${column}:${client}`
            const own = counters.get(key)
            counters.set(key, (typeof own === 'number' ? own : 0) + by)
            wrote = true
          },
          spliceText(life, column, index, deleteCount, insert) {
            const text = doc.getText(`${TEXT_PREFIX}${life}:${column}`)
            if (deleteCount > 0) text.delete(index, deleteCount)
            if (insert.length > 0) text.insert(index, insert)
            wrote = wrote || deleteCount > 0 || insert.length > 0
          },
        })
      })
    } finally {
      doc.off('update', capture)
      this.length = -1
    }
    this.wholeDoc = null
    if (!wrote || update === null) return null
    // On an empty document the change is the whole document: encode() can reuse it.
    if (wasEmpty) this.wholeDoc = update
    // A local change does not retry what a peer's update left pending, a load does: see settle().
    if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null) this.settle()
    return update
  }

  applyDelta(delta: Uint8Array): ApplyResult {
    const wasEmpty = this.isEmpty()
    const before = wasEmpty ? 0 : this.extent()
    checkStructure(delta)
    this.wholeDoc = null
    this.length = -1
    try {
      Y.applyUpdate(this.doc, delta)
    } catch (error) {
      throw new DeltaError('delta is not a valid Yjs update', { cause: error })
    }
    // Yjs gives up its client id when a peer's update carries items in that id; the row keeps it
    // (its next items follow those).
    this.doc.clientID = this.clientId
    const store = this.doc.store
    const pending = store.pendingStructs !== null || store.pendingDs !== null
    if (pending) this.settle()
    // Everything in the delta applied to an empty document: the delta is the whole document.
    else if (wasEmpty) this.wholeDoc = delta
    if (this.extent() !== before) return 'changed'
    // Held until its dependencies arrive; persisting it keeps it across restarts.
    return pending ? 'pending' : 'unchanged'
  }

  private isEmpty(): boolean {
    const store = this.doc.store
    return store.clients.size === 0 && store.pendingStructs === null && store.pendingDs === null
  }

  /**
   * The sum of every client's clock and of the lengths of deleted items. Both parts only grow, and
   * the canonical state (state vector + delete set) changes exactly when one of them does, so
   * comparing this number before and after a merge tells whether it changed without building the
   * canonical state twice.
   */
  private extent(): number {
    let total = 0
    for (const structs of this.doc.store.clients.values()) {
      const last = structs[structs.length - 1]!
      total += last.id.clock + last.length
      for (const struct of structs) if (struct.deleted) total += struct.length
    }
    return total
  }

  version(): Uint8Array {
    return Y.encodeStateVector(this.doc)
  }

  deltaSince(version: Uint8Array): Uint8Array | null {
    let update: Uint8Array
    try {
      update = Y.encodeStateAsUpdate(this.doc, version)
    } catch (error) {
      throw new DeltaError('version is not a valid Yjs state vector', { cause: error })
    }
    // An update carrying no structs and no deletions is 2 bytes: [0 clients, 0 delete-set clients].
    return update.length <= 2 ? null : update
  }

  holdsAll(): boolean {
    // A state vector says which items a replica has, not which it deleted: it cannot tell.
    return false
  }

  encode(): Uint8Array {
    return this.wholeDoc ?? Y.encodeStateAsUpdate(this.doc)
  }

  /**
   * Replaces a document holding pending work (a peer's structs or deletions whose dependencies
   * have not arrived) by the one its encoding loads, so that what is stored, what is hashed and
   * what a later load gives are one and the same state. Found by the fuzzer: such a document
   * integrates more of its pending work when loaded than it did in memory, since Yjs retries it
   * only on some later updates; the stored digest would not match the row read back, and peers
   * would disagree about the same bytes. Yjs also keeps some malformed updates pending and saves
   * them, failing on every later load (empty ranges: checkStructure refuses those first): a load
   * that fails here refuses the delta (the caller restores the row from disk). A document with
   * nothing pending loads as it is, and is left alone (this costs an encode and a load).
   */
  private settle(): void {
    const bytes = Y.encodeStateAsUpdate(this.doc)
    const loaded = new RowYDoc()
    try {
      Y.applyUpdate(loaded, bytes)
    } catch (error) {
      loaded.destroy()
      throw new DeltaError('delta is not a valid Yjs update: the row it makes could not be loaded again', { cause: error })
    }
    // As in the constructor: the client id is set after loading.
    loaded.clientID = this.clientId
    this.doc.destroy()
    this.doc = loaded
    this.wholeDoc = bytes
    this.length = -1
  }

  /**
   * Yjs state is fully determined by which items exist (the state vector) and which are deleted
   * (the delete set). Both are serialised here sorted and merged, so equal state ⇒ equal bytes.
   */
  canonicalState(): Uint8Array {
    const clients = this.doc.store.clients
    const ids = clients.size === 1 ? [...clients.keys()] : [...clients.keys()].sort((a, b) => a - b)
    const parts: number[] = []
    for (const client of ids) {
      const structs = clients.get(client)!
      const last = structs[structs.length - 1]!
      parts.push(client, last.id.clock + last.length)
    }
    parts.push(-1)
    // The delete set, read straight from the structs (what Y.createDeleteSetFromStructStore
    // collects): a client's structs are sorted by clock, so runs of deleted ones merge in one pass.
    for (const client of ids) {
      let start = -1
      let end = -1
      for (const struct of clients.get(client)!) {
        if (!struct.deleted) continue
        const clock = struct.id.clock
        if (start < 0) parts.push(client)
        else if (clock <= end) {
          end = Math.max(end, clock + struct.length)
          continue
        } else parts.push(start, end - start)
        start = clock
        end = clock + struct.length
      }
      if (start >= 0) parts.push(start, end - start, -2)
    }
    return new Uint8Array(new Float64Array(parts).buffer)
  }

  dispose(): void {
    this.doc.destroy()
  }
}

/** Every struct the update creates is the client's of `actor` (deletions may be of anyone's). */
function checkYjsAuthor(delta: Uint8Array, actor: string): void {
  let meta: { from: Map<number, number>; to: Map<number, number> }
  try {
    meta = Y.parseUpdateMeta(delta)
  } catch (error) {
    throw new DeltaError('delta is not a valid Yjs update', { cause: error })
  }
  const own = yjsClientId(actor)
  for (const client of meta.from.keys()) {
    if (client !== own) throw new DeltaError(`delta carries operations of Yjs client ${client}, not of its author (client ${own})`)
  }
}

export const yjsEngine: RowEngine = {
  name: 'yjs',
  checkAuthor: checkYjsAuthor,
  create: (context) => new YjsDoc(context),
  decode: (bytes, context) => new YjsDoc(context, bytes),
}

import { inflateSync } from 'fflate'
import { DeltaError } from '../errors.js'

/*
 * A size check of Automerge bytes before Automerge loads them. Automerge's storage format is
 * columnar and run-length encoded, and whole documents deflate their columns: 1,176 bytes of
 * document hold a million-character text (measured: 1.5 s and its full memory to load). So the
 * encoded size bounds nothing; what a row costs is its number of operations and its value bytes.
 * This reads just enough of each chunk (automerge.org/automerge-binary-format-spec) to count
 * them — the rows of the action column, summed from its run lengths without expanding them, and
 * the length of the raw value column — inflating compressed parts into buffers no larger than
 * the limits allow.
 *
 * Chunk: magic (4) · checksum (4) · type (1) · length (uLEB) · payload.
 *   type 0 document: actors · heads · change-column metadata · op-column metadata · column data
 *   type 1 change:   deps · actor · seq · start op · time · message · other actors · op-column metadata · column data
 *   type 2 compressed change: raw DEFLATE of a type-1 payload
 * Column metadata: count, then (spec, length) pairs; spec = id << 4 | deflated << 3 | type.
 */

export interface AutomergeLimits {
  /** Operations in all chunks together. */
  maxOps: number
  /** Bytes of raw values (strings, numbers, bytes) in all chunks together. */
  maxValueBytes: number
}

export interface AutomergeSize {
  ops: number
  valueBytes: number
  chunks: number
}

const MAGIC = [0x85, 0x6f, 0x4a, 0x83]
const CHUNK_DOCUMENT = 0
const CHUNK_CHANGE = 1
const CHUNK_COMPRESSED_CHANGE = 2
const HASH_BYTES = 32
const ACTION_COLUMN_ID = 4
const VALUE_COLUMN_ID = 5
const TYPE_INT_RLE = 2
const TYPE_VALUE_RAW = 7
const DEFLATE_BIT = 8
/** Metadata of a chunk (column specs, actors) is small; inflated column data other than values is bounded by this too. */
const MAX_INFLATED_COLUMN_BYTES = 16 * 1024 * 1024

class Reader {
  pos = 0

  constructor(
    readonly bytes: Uint8Array,
    private readonly end = bytes.length,
  ) {}

  get done(): boolean {
    return this.pos >= this.end
  }

  byte(): number {
    if (this.pos >= this.end) throw malformed('ends early')
    return this.bytes[this.pos++]!
  }

  take(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.end) throw malformed(`claims ${n} bytes past its end`)
    const out = this.bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  skip(n: number): void {
    this.take(n)
  }

  uleb(): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      const b = this.byte()
      result += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw malformed('holds a number too large')
        return result
      }
      scale *= 128
    }
    throw malformed('holds an overlong number')
  }

  sleb(): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      const b = this.byte()
      result += (b & 0x7f) * scale
      scale *= 128
      if ((b & 0x80) === 0) {
        if ((b & 0x40) !== 0) result -= scale
        if (!Number.isSafeInteger(result)) throw malformed('holds a number too large')
        return result
      }
    }
    throw malformed('holds an overlong number')
  }
}

function malformed(what: string): DeltaError {
  return new DeltaError(`Automerge bytes refused: a chunk ${what}`)
}

/** Inflates raw DEFLATE into at most `limit` bytes; more is refused (the output buffer is limit + 1 long). */
function inflateBounded(data: Uint8Array, limit: number, what: string): Uint8Array {
  let out: Uint8Array
  try {
    out = inflateSync(data, { out: new Uint8Array(limit + 1) })
  } catch (error) {
    throw new DeltaError(`Automerge bytes refused: ${what} is not valid DEFLATE data`, { cause: error })
  }
  if (out.length > limit) throw new DeltaError(`Automerge bytes refused: ${what} inflates to more than ${limit} bytes`)
  return out
}

interface Column {
  id: number
  type: number
  deflated: boolean
  data: Uint8Array
}

function columns(r: Reader): Array<{ spec: number; length: number }> {
  const count = r.uleb()
  if (count > 1024) throw malformed(`lists ${count} columns`)
  const out: Array<{ spec: number; length: number }> = []
  for (let i = 0; i < count; i++) out.push({ spec: r.uleb(), length: r.uleb() })
  return out
}

function columnData(r: Reader, meta: Array<{ spec: number; length: number }>): Column[] {
  return meta.map(({ spec, length }) => ({ id: spec >> 4, type: spec & 7, deflated: (spec & DEFLATE_BIT) !== 0, data: r.take(length) }))
}

/** Rows of an unsigned-integer RLE column: runs are summed, never expanded. */
function rleRows(data: Uint8Array, limit: number): number {
  const r = new Reader(data)
  let rows = 0
  while (!r.done) {
    const count = r.sleb()
    if (count > 0) {
      r.uleb()
      rows += count
    } else if (count < 0) {
      for (let i = 0; i < -count; i++) r.uleb()
      rows += -count
    } else {
      rows += r.uleb()
    }
    if (rows > limit) return rows
  }
  return rows
}

function measure(cols: readonly Column[], limits: AutomergeLimits, size: AutomergeSize): void {
  for (const col of cols) {
    const isAction = col.id === ACTION_COLUMN_ID && col.type === TYPE_INT_RLE
    const isValue = col.id === VALUE_COLUMN_ID && col.type === TYPE_VALUE_RAW
    if (!isAction && !isValue) {
      // Other columns are not measured, but a compressed one still must not inflate without bound.
      if (col.deflated) inflateBounded(col.data, MAX_INFLATED_COLUMN_BYTES, `column ${col.id}`)
      continue
    }
    if (isValue) {
      const left = limits.maxValueBytes - size.valueBytes
      const data = col.deflated ? inflateBounded(col.data, Math.max(0, left), 'a value column') : col.data
      size.valueBytes += data.length
    } else {
      const data = col.deflated ? inflateBounded(col.data, MAX_INFLATED_COLUMN_BYTES, 'an action column') : col.data
      size.ops += rleRows(data, limits.maxOps - size.ops)
    }
    if (size.ops > limits.maxOps) throw new DeltaError(`Automerge bytes refused: more than ${limits.maxOps} operations (a row may hold at most ${limits.maxOps})`)
    if (size.valueBytes > limits.maxValueBytes) throw new DeltaError(`Automerge bytes refused: more than ${limits.maxValueBytes} bytes of values`)
  }
}

function changePayload(r: Reader, limits: AutomergeLimits, size: AutomergeSize): void {
  r.skip(r.uleb() * HASH_BYTES) // deps
  r.skip(r.uleb()) // actor
  r.uleb() // seq
  r.uleb() // start op
  r.sleb() // time
  r.skip(r.uleb()) // message
  const others = r.uleb()
  if (others > 1024) throw malformed(`lists ${others} actors`)
  for (let i = 0; i < others; i++) r.skip(r.uleb())
  measure(columnData(r, columns(r)), limits, size)
}

function documentPayload(r: Reader, limits: AutomergeLimits, size: AutomergeSize): void {
  const actors = r.uleb()
  if (actors > 65_536) throw malformed(`lists ${actors} actors`)
  for (let i = 0; i < actors; i++) r.skip(r.uleb())
  r.skip(r.uleb() * HASH_BYTES) // heads
  const changeMeta = columns(r)
  const opMeta = columns(r)
  columnData(r, changeMeta) // change metadata columns: not measured (bounded by the frame)
  measure(columnData(r, opMeta), limits, size)
}

/**
 * Counts the operations and value bytes of Automerge bytes (a saved document, or changes as
 * saveSince gives them) without loading them; throws DeltaError if they exceed `limits` or are
 * not Automerge chunks. Chunk checksums are Automerge's to verify.
 */
export function measureAutomerge(bytes: Uint8Array, limits: AutomergeLimits): AutomergeSize {
  const size: AutomergeSize = { ops: 0, valueBytes: 0, chunks: 0 }
  const r = new Reader(bytes)
  while (!r.done) {
    for (const m of MAGIC) if (r.byte() !== m) throw malformed('does not start with the Automerge magic bytes')
    r.skip(4) // checksum
    const type = r.byte()
    const length = r.uleb()
    const payload = r.take(length)
    size.chunks++
    if (type === CHUNK_DOCUMENT) documentPayload(new Reader(payload), limits, size)
    else if (type === CHUNK_CHANGE) changePayload(new Reader(payload), limits, size)
    else if (type === CHUNK_COMPRESSED_CHANGE) changePayload(new Reader(inflateBounded(payload, MAX_INFLATED_COLUMN_BYTES + limits.maxValueBytes, 'a compressed change')), limits, size)
    else throw malformed(`has type ${type}, which this Shoal does not read`)
  }
  return size
}

/** One change chunk: its author's actor (hex) and its bytes as a standalone chunk. */
export interface ChangeChunk {
  actor: string
  bytes: Uint8Array
}

function hex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

/**
 * The change chunks of Automerge bytes with their actors, read from the chunk headers; a whole
 * document (which merges many authors) is refused. For checking who made the changes of a signed
 * delta before anything is loaded. Compressed changes are inflated within the usual bounds.
 */
export function automergeChanges(bytes: Uint8Array): ChangeChunk[] {
  const out: ChangeChunk[] = []
  const r = new Reader(bytes)
  while (!r.done) {
    const start = r.pos
    for (const m of MAGIC) if (r.byte() !== m) throw malformed('does not start with the Automerge magic bytes')
    r.skip(4)
    const type = r.byte()
    const length = r.uleb()
    const payload = r.take(length)
    const chunk = bytes.subarray(start, r.pos)
    let header: Uint8Array
    if (type === CHUNK_CHANGE) header = payload
    else if (type === CHUNK_COMPRESSED_CHANGE) header = inflateBounded(payload, MAX_INFLATED_COLUMN_BYTES + MAX_ROW_VALUE_BYTES_FOR_AUTHORS, 'a compressed change')
    else throw new DeltaError('Automerge bytes refused: a signed change must hold changes, not a whole document')
    const h = new Reader(header)
    h.skip(h.uleb() * HASH_BYTES)
    out.push({ actor: hex(h.take(h.uleb())), bytes: chunk })
  }
  return out
}

/** Inflate bound for a compressed change read only for its header (values are measured separately). */
const MAX_ROW_VALUE_BYTES_FOR_AUTHORS = 8 * 1024 * 1024

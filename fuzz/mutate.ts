import type { Rng } from '../src/sim/core/rng.js'

/*
 * Mutations of valid inputs, the second half of structure-aware fuzzing: a target generates
 * mostly-valid inputs (fast-check arbitraries, shipped files, real engine deltas), and these turn
 * them hostile, at three levels:
 *   - values: a node of the decoded structure replaced by something of the wrong type or out of
 *     range (NaN, Infinity, -0, 2^53, huge or NUL-holding strings, bytes, deep nesting, __proto__);
 *   - bytes: bit flips, interesting bytes, truncation, deleted/duplicated ranges, splices with
 *     another seed, CBOR headers claiming huge lengths, deep nesting;
 *   - text: characters and structural tokens of JSON and YAML (anchors, aliases, tags, tabs, BOM).
 * Every choice comes from the injected Rng, so a seed replays the same inputs.
 */

/** A fixed long string, made once (a fresh 100k-character string per input would dominate the run). */
const LONG = 'x'.repeat(70_000)
const NUL = 'a\u0000b'

/** Values that break naive checks: non-finite and unsafe numbers, odd strings, other types. */
export function hostileValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(0, 27)) {
    case 0: return NaN
    case 1: return Infinity
    case 2: return -Infinity
    case 3: return -0
    case 4: return 2 ** 53
    case 5: return -1
    case 6: return 1.5
    case 7: return 1e308
    case 8: return Number.MAX_SAFE_INTEGER
    case 9: return ''
    case 10: return NUL
    case 11: return LONG
    case 12: return '\ud800'
    case 13: return '__proto__'
    case 14: return true
    case 15: return null
    case 16: return undefined
    case 17: return []
    case 18: return {}
    case 19: return new Uint8Array(0)
    case 20: return randomBytes(rng, rng.int(1, 64))
    case 21: return nested(rng.int(2, depth > 0 ? 4 : 200))
    case 22: return JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"x": 1}}}') as unknown
    case 23: return rng.int(-(2 ** 31), 2 ** 31)
    case 24: return 'ü🐟'.repeat(rng.int(1, 300))
    case 25: return depth < 2 ? [hostileValue(rng, depth + 1), hostileValue(rng, depth + 1)] : 0
    case 26: return depth < 2 ? { [hostileKey(rng)]: hostileValue(rng, depth + 1) } : 'k'
    default: return 2 ** 64
  }
}

export function hostileKey(rng: Rng): string {
  return rng.pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty', '', ' ', NUL, 'x'.repeat(300), 'id', 'name', 'qty', 'a.b', '*', '_tables'])
}

function nested(depth: number): unknown {
  let v: unknown = 0
  for (let i = 0; i < depth; i++) v = [v]
  return v
}

export function randomBytes(rng: Rng, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = rng.int(0, 255)
  return out
}

/** Every node of a value (arrays and plain objects walked), with a way to replace it. */
interface Slot {
  get(): unknown
  set(value: unknown): void
}

function slots(root: { v: unknown }, limit = 2000): Slot[] {
  const out: Slot[] = [{ get: () => root.v, set: (x) => (root.v = x) }]
  const walk = (value: unknown, depth: number): void => {
    if (out.length >= limit || depth > 32) return
    if (Array.isArray(value)) {
      value.forEach((_, i) => {
        out.push({ get: () => value[i], set: (x) => (value[i] = x) })
        walk(value[i], depth + 1)
      })
    } else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
      const o = value as Record<string, unknown>
      for (const k of Object.keys(o)) {
        out.push({ get: () => o[k], set: (x) => (o[k] = x) })
        walk(o[k], depth + 1)
      }
    }
  }
  walk(root.v, 0)
  return out
}

/**
 * A copy of bytes. Not `bytes.slice()`: cborg hands out Node Buffers, whose slice() is a view, so
 * a mutant would write through into the seed it came from.
 */
export function copyOf(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, start, end)
}

/** A deep copy of plain data (arrays, objects, bytes, primitives). */
export function clone<T>(value: T): T {
  // ArrayBuffer.isView: an object whose __proto__ was set to Uint8Array.prototype is no typed array.
  if (value instanceof Uint8Array && ArrayBuffer.isView(value)) return copyOf(value) as T
  if (Array.isArray(value)) return value.map(clone) as T
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clone(v)])) as T
  return value
}

/**
 * One structural mutation of a (cloned) value: a node replaced by a hostile value or by another
 * node of the same input, an array entry removed or duplicated, a field dropped or added, a number
 * nudged to a boundary. `vocabulary` holds strings meaningful to the target (type names, table
 * names) so mutants also reach the code behind the first checks.
 */
export function mutateValue(rng: Rng, value: unknown, vocabulary: readonly string[] = []): unknown {
  const root = { v: clone(value) }
  const all = slots(root)
  const slot = rng.pick(all)
  const current = slot.get()
  switch (rng.int(0, 9)) {
    case 0:
    case 1:
      slot.set(hostileValue(rng))
      break
    case 2:
      slot.set(clone(rng.pick(all).get()))
      break
    case 3:
      if (Array.isArray(current) && current.length > 0) current.splice(rng.int(0, current.length - 1), 1)
      else slot.set(vocabulary.length > 0 ? rng.pick(vocabulary) : hostileValue(rng))
      break
    case 4:
      if (Array.isArray(current) && current.length > 0) current.splice(rng.int(0, current.length), 0, clone(rng.pick(current)))
      else slot.set([current])
      break
    case 5:
      if (typeof current === 'number') slot.set(rng.pick([current + 1, current - 1, -current, current * 2 ** 20, current + 0.5, 0, NaN]))
      else slot.set(typeof current === 'string' ? current + rng.pick(['\u0000', 'é', '/', '%', '\n', LONG.slice(0, 300)]) : rng.int(-5, 70_000))
      break
    case 6:
      if (current !== null && typeof current === 'object' && !Array.isArray(current) && !(current instanceof Uint8Array)) {
        const o = current as Record<string, unknown>
        const keys = Object.keys(o)
        if (keys.length > 0 && rng.chance(0.5)) delete o[rng.pick(keys)]
        else o[rng.chance(0.5) && keys.length > 0 ? rng.pick(keys) + '_' : hostileKey(rng)] = hostileValue(rng)
      } else slot.set(vocabulary.length > 0 ? rng.pick(vocabulary) : '')
      break
    case 7:
      slot.set(vocabulary.length > 0 ? rng.pick(vocabulary) : hostileValue(rng))
      break
    case 8:
      if (current instanceof Uint8Array) slot.set(mutateBytes(rng, current))
      else slot.set(randomBytes(rng, rng.int(0, 40)))
      break
    default:
      if (Array.isArray(current)) rng.shuffle(current)
      else slot.set(typeof current === 'string' ? current.slice(0, rng.int(0, current.length)) : String(current))
  }
  return root.v
}

/** CBOR heads and bytes that stress a decoder: huge claimed lengths, indefinite items, NaN floats, tags. */
const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x1b, 0x1f, 0x3b, 0x5f, 0x7f, 0x9f, 0xbf, 0xf7, 0xf9, 0xfa, 0xfb, 0xc0, 0xc2, 0xd8, 0xe0, 0x20, 0x40, 0x60]
const HUGE_HEADS: readonly number[][] = [
  [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x7b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
  [0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xbb, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
  [0x5a, 0xff, 0xff, 0xff, 0xff],
  [0x9a, 0x10, 0x00, 0x00, 0x00],
  [0xf9, 0x7e, 0x00],
  [0xfb, 0x7f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
  [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xc2, 0x49, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
]

/** Deep nesting as raw CBOR: `depth` one-element array heads around a 0, so no encoder recursion is needed. */
export function deepCbor(depth: number): Uint8Array {
  const out = new Uint8Array(depth + 1).fill(0x81)
  out[depth] = 0x00
  return out
}

/** One byte-level mutation of `bytes` (never in place); `others` are seeds to splice from. */
export function mutateBytes(rng: Rng, bytes: Uint8Array, others: readonly Uint8Array[] = []): Uint8Array {
  const n = bytes.length
  const at = (): number => rng.int(0, Math.max(0, n - 1))
  const out = (): Uint8Array => copyOf(bytes)
  switch (rng.int(0, 11)) {
    case 0: {
      if (n === 0) return new Uint8Array([rng.int(0, 255)])
      const b = out()
      const i = at()
      b[i]! ^= 1 << rng.int(0, 7)
      return b
    }
    case 1: {
      if (n === 0) return new Uint8Array([rng.pick(INTERESTING_BYTES)])
      const b = out()
      b[at()] = rng.pick(INTERESTING_BYTES)
      return b
    }
    case 2:
      return copyOf(bytes, 0, rng.int(0, n))
    case 3: {
      const i = rng.int(0, n)
      const j = Math.min(n, i + rng.int(1, 16))
      return concat(bytes.subarray(0, i), bytes.subarray(j))
    }
    case 4: {
      const i = rng.int(0, n)
      const j = Math.min(n, i + rng.int(1, 64))
      return concat(bytes.subarray(0, j), bytes.subarray(i, j), bytes.subarray(j))
    }
    case 5: {
      const other = others.length > 0 ? rng.pick(others) : bytes
      const i = rng.int(0, n)
      const k = rng.int(0, other.length)
      return concat(bytes.subarray(0, i), other.subarray(k))
    }
    case 6: {
      const i = rng.int(0, n)
      return concat(bytes.subarray(0, i), new Uint8Array(rng.pick(HUGE_HEADS)), bytes.subarray(i))
    }
    case 7: {
      const i = rng.int(0, n)
      return concat(bytes.subarray(0, i), randomBytes(rng, rng.int(1, 32)), bytes.subarray(i))
    }
    case 8: {
      const i = rng.int(0, n)
      return concat(bytes.subarray(0, i), deepCbor(rng.int(100, 5000)), bytes.subarray(i))
    }
    case 9: {
      // Several flips at once: whole-structure damage, not one field.
      const b = out()
      for (let k = rng.int(2, 8); k > 0 && n > 0; k--) b[at()] = rng.int(0, 255)
      return b
    }
    case 10:
      return concat(bytes, randomBytes(rng, rng.int(1, 8)))
    default:
      return randomBytes(rng, rng.int(0, 64))
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Tokens of JSON and YAML that change structure: anchors, aliases, tags, flow collections, odd whitespace. */
const TEXT_TOKENS = [
  '{', '}', '[', ']', '"', "'", ':', ',', '- ', '\n', '\t', '\r\n', '\ufeff', '\u0000', '#', '&a ', '*a', '!!binary ', '!!js/function ', '<<: *a\n',
  '? ', '|', '>', '---\n', '...\n', '%YAML 1.1\n', '1e999', '-1e999', 'NaN', '.nan', '.inf', '-.inf', 'null', '~', 'true', 'yes', '0x7fffffffffffffff',
  '9007199254740993', '-0', '"\\ud800"', '"__proto__"', '__proto__: ', '"constructor": ', '\\u0000', '""', '0o777', '1_000', '2001-12-14',
]

/** One text-level mutation of a JSON or YAML document. */
export function mutateText(rng: Rng, text: string, others: readonly string[] = []): string {
  const n = text.length
  const i = rng.int(0, n)
  switch (rng.int(0, 9)) {
    case 0:
      return text.slice(0, i) + rng.pick(TEXT_TOKENS) + text.slice(i)
    case 1:
      return text.slice(0, i) + text.slice(Math.min(n, i + rng.int(1, 20)))
    case 2:
      return text.slice(0, i)
    case 3: {
      const j = Math.min(n, i + rng.int(1, 80))
      return text.slice(0, j) + text.slice(i, j) + text.slice(j)
    }
    case 4: {
      const other = others.length > 0 ? rng.pick(others) : text
      return text.slice(0, i) + other.slice(rng.int(0, other.length))
    }
    case 5: {
      const depth = rng.chance(0.1) ? rng.int(300, 3000) : rng.int(10, 200)
      const open = rng.pick(['[', '{"a":', '- ', '[[', '{a: '])
      return text.slice(0, i) + open.repeat(depth) + text.slice(i)
    }
    case 6:
      return text.slice(0, i) + String.fromCharCode(rng.int(0, 0xffff)) + text.slice(i + 1)
    case 7: {
      // A digit string turned into a boundary number.
      const m = /-?\d+(\.\d+)?/g
      const found = [...text.matchAll(m)]
      if (found.length === 0) return text + rng.pick(TEXT_TOKENS)
      const hit = rng.pick(found)
      return text.slice(0, hit.index) + rng.pick(['1e999', '-1', '0', '1.5', '9007199254740993', '-0', '1e-400', '4294967296', '65536', '99999999999']) + text.slice(hit.index + hit[0].length)
    }
    case 8:
      return text.slice(0, i) + 'x'.repeat(rng.int(1, 5000)) + text.slice(i)
    default:
      return text.replace(/\n/g, rng.pick(['\r\n', '\n\t', '\n ', '']))
  }
}

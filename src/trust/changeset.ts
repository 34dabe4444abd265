import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { decode, encode } from 'cborg'
import { MAX_DELTA_BYTES, MAX_KEY_BYTES, NAME_PATTERN } from '../constants.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { utf8Length } from '../table/hash.js'
import { TrustError } from './errors.js'

/*
 * A changeset: the deltas one author wrote to one (table, partition) in one store batch, with the
 * author's sequence number for that partition, signed by the author's peer key. In a private mesh
 * it is the unit of replication on every path (docs/trust.md): whoever delivers it, a receiver
 * checks the signature and the author's rights, never the deliverer's.
 *
 *   envelope  [payload, signature]
 *   payload   [1, 'changes', mesh, author, table, partition, seq, [[key, delta], …]]
 */

export const CHANGESET_VERSION = 1
/** Largest changeset: it must fit one gossip message (512 KiB) with room for the envelope. */
export const MAX_CHANGESET_BYTES = 500 * 1024
/** Most row deltas in one changeset. */
export const MAX_CHANGESET_ROWS = 4096
/** Sequence numbers are per (author, table, partition), from 1. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER

export interface ChangesetRow {
  key: string
  delta: Uint8Array
}

export interface Changeset {
  mesh: string
  /** The author's peer id. */
  author: string
  table: string
  partition: string
  seq: number
  rows: ChangesetRow[]
}

export interface SignedChangeset {
  changeset: Changeset
  /** The encoded envelope, as stored and sent. */
  bytes: Uint8Array
}

function payloadOf(c: Changeset): Uint8Array {
  return encode([CHANGESET_VERSION, 'changes', c.mesh, c.author, c.table, c.partition, c.seq, c.rows.map((r) => [r.key, r.delta])])
}

/** Signs a changeset with its author's key (which must be the author's). */
export async function signChangeset(changeset: Changeset, key: PrivateKey): Promise<SignedChangeset> {
  const payload = payloadOf(changeset)
  const signature = await key.sign(payload)
  return { changeset, bytes: encode([payload, signature]) }
}

function fail(what: string): never {
  throw new TrustError('CHANGESET_INVALID', `changeset refused: ${what}`)
}

function text(v: unknown, what: string, allowEmpty: boolean): string {
  if (typeof v !== 'string' || (!allowEmpty && v === '') || v.includes('\u0000') || utf8Length(v) > MAX_KEY_BYTES) fail(`invalid ${what}`)
  return v
}

const keyCache = new Map<string, PublicKey>()

/** The Ed25519 public key of a peer id (it is inside an Ed25519 peer id). */
export function publicKeyOfPeer(peer: string): PublicKey {
  let key = keyCache.get(peer)
  if (key === undefined) {
    try {
      const id = peerIdFromString(peer)
      if (id.type !== 'Ed25519' || id.publicKey === undefined) throw new Error('not an Ed25519 peer id')
      key = publicKeyFromRaw(id.publicKey.raw)
    } catch (error) {
      fail(`author ${JSON.stringify(peer.slice(0, 80))} is not an Ed25519 peer id: ${(error as Error).message}`)
    }
    if (keyCache.size > 4096) keyCache.clear()
    keyCache.set(peer, key)
  }
  return key
}

/** Decodes a changeset and checks its form (not yet its signature: see verifyChangeset). */
export function decodeChangeset(bytes: Uint8Array): { changeset: Changeset; payload: Uint8Array; signature: Uint8Array } {
  if (bytes.length > MAX_CHANGESET_BYTES + 1024) fail(`${bytes.length} bytes, over the ${MAX_CHANGESET_BYTES}-byte limit`)
  let envelope: unknown
  try {
    envelope = decode(bytes)
  } catch {
    fail('not valid CBOR')
  }
  if (!Array.isArray(envelope) || envelope.length !== 2 || !(envelope[0] instanceof Uint8Array) || !(envelope[1] instanceof Uint8Array)) fail('not a [payload, signature] pair')
  const [payload, signature] = envelope as [Uint8Array, Uint8Array]
  let v: unknown
  try {
    v = decode(payload)
  } catch {
    fail('payload is not valid CBOR')
  }
  if (!Array.isArray(v) || v.length !== 8) fail('payload is not a [version, kind, mesh, author, table, partition, seq, rows] array')
  if (v[0] !== CHANGESET_VERSION) fail(`version ${JSON.stringify(v[0])}; this peer reads ${CHANGESET_VERSION}`)
  if (v[1] !== 'changes') fail(`kind ${JSON.stringify(v[1])} is not 'changes'`)
  const table = v[4]
  if (typeof table !== 'string' || !(NAME_PATTERN.test(table) || table === CATALOG_TABLE)) fail(`invalid table ${JSON.stringify(table)}`)
  if (typeof v[6] !== 'number' || !Number.isSafeInteger(v[6]) || v[6] < 1) fail('seq must be a positive integer')
  if (!Array.isArray(v[7]) || v[7].length === 0 || v[7].length > MAX_CHANGESET_ROWS) fail(`rows must be a list of 1…${MAX_CHANGESET_ROWS}`)
  const rows = (v[7] as unknown[]).map((entry) => {
    if (!Array.isArray(entry) || entry.length !== 2) fail('a row is not a [key, delta] pair')
    const [key, delta] = entry as unknown[]
    if (!(delta instanceof Uint8Array) || delta.length === 0 || delta.length > MAX_DELTA_BYTES) fail(`a delta must be 1…${MAX_DELTA_BYTES} bytes`)
    return { key: text(key, 'row key', false), delta }
  })
  return {
    changeset: { mesh: text(v[2], 'mesh', false), author: text(v[3], 'author', false), table, partition: text(v[5], 'partition', true), seq: v[6], rows },
    payload,
    signature,
  }
}

/**
 * Decodes a changeset of `mesh` and checks its author's signature. TrustError (CHANGESET_INVALID,
 * WRONG_MESH, SIGNATURE_INVALID) if it is not a valid one. The author's rights and the content of
 * its deltas are for the receiver to check next.
 */
export async function verifyChangeset(bytes: Uint8Array, mesh: string): Promise<Changeset> {
  const { changeset, payload, signature } = decodeChangeset(bytes)
  if (changeset.mesh !== mesh) throw new TrustError('WRONG_MESH', `changeset refused: it is for mesh ${changeset.mesh}, this peer belongs to ${mesh}`)
  const ok = await publicKeyOfPeer(changeset.author).verify(payload, signature)
  if (!ok) throw new TrustError('SIGNATURE_INVALID', `changeset refused: ${changeset.table}/${JSON.stringify(changeset.partition)} seq ${changeset.seq} is not signed by its author ${changeset.author}`)
  return changeset
}

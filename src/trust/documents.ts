import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { decode, encode } from 'cborg'
import { MAX_KEY_BYTES, NAME_PATTERN } from '../constants.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { utf8Length } from '../table/hash.js'
import { TrustError } from './errors.js'

/*
 * The documents a mesh authority signs (docs/trust.md): admissions, revocations and rules. Each
 * travels as a signed envelope, [payload, signature], where the payload is the CBOR of
 * [version, kind, mesh, …fields] and the signature is the authority's Ed25519 signature of the
 * payload bytes. The mesh id is the authority's public key written as a libp2p peer id, so any
 * peer can check a document with nothing but the mesh id it was configured with.
 *
 * Pure: keys come in as libp2p key objects; no clock (times are passed in).
 */

export const TRUST_VERSION = 1
/** Largest signed document accepted (rules for many tables and groups fit in far less). */
export const MAX_DOCUMENT_BYTES = 64 * 1024
/** Most groups a rules document may name, and tables it may list. */
export const MAX_GROUPS = 64
export const MAX_RULE_TABLES = 1100
/** Most partitions one admission may name as the member's own. */
export const MAX_OWN_PARTITIONS = 1024

/** What a member of `group` may do with a table's partitions: all of them, or only its own. */
export type Grant = '*' | 'own'

export interface TableRule {
  /** group (or '*': any member) → which partitions it may write. */
  write: Readonly<Record<string, Grant>>
  /** group (or '*': any member) → which partitions it may receive. */
  read: Readonly<Record<string, Grant>>
}

export interface Admission {
  kind: 'admission'
  mesh: string
  /** The member's libp2p peer id. */
  peer: string
  group: string
  /** The member's own partitions, what rules granting 'own' refer to (a store: its store number). */
  partitions: string[]
  /** Milliseconds since the epoch. */
  issuedAt: number
  expiresAt: number
  /** Unique per admission (the authority's counter or a random id). */
  serial: string
}

export interface Revocation {
  kind: 'revocation'
  mesh: string
  peer: string
  /** The admission revoked, by serial; '*': every admission of the peer (it is out of the mesh). */
  serial: string
  issuedAt: number
  reason: string
}

export interface Rules {
  kind: 'rules'
  mesh: string
  /** Higher replaces lower; equal versions must be equal documents. */
  version: number
  issuedAt: number
  /** Groups known to the mesh; `relay`: its members' merged rows are accepted (see docs/trust.md). */
  groups: Readonly<Record<string, { relay: boolean }>>
  /** Per table; `_tables` (the schema catalog) is a table like the others. */
  tables: Readonly<Record<string, TableRule>>
  /** For tables not listed. */
  otherTables: TableRule
}

export type TrustDocument = Admission | Revocation | Rules

/** A document with its signature, as it travels and is stored. */
export interface Signed<T extends TrustDocument> {
  document: T
  /** The exact bytes signed (kept, so the signature is checked against what was signed). */
  payload: Uint8Array
  signature: Uint8Array
}

// ---- mesh ids -------------------------------------------------------------------------------

/** The mesh id of an authority key: its public key as a libp2p peer id (12D3Koo…). */
export function meshIdOf(authority: PublicKey): string {
  return peerIdFromPublicKey(authority).toString()
}

/** The authority's public key from a mesh id; TrustError if it is not an Ed25519 peer id. */
export function authorityKeyOf(mesh: string): PublicKey {
  try {
    const id = peerIdFromString(mesh)
    if (id.type !== 'Ed25519' || id.publicKey === undefined) throw new Error('not an Ed25519 key')
    return publicKeyFromRaw(id.publicKey.raw)
  } catch (error) {
    throw new TrustError('MESH_INVALID', `mesh id ${JSON.stringify(mesh.slice(0, 80))} is not an Ed25519 public key in peer-id form (12D3Koo…): ${(error as Error).message}`)
  }
}

// ---- encoding ---------------------------------------------------------------------------------

function payloadOf(d: TrustDocument): unknown[] {
  switch (d.kind) {
    case 'admission':
      return [TRUST_VERSION, 'admission', d.mesh, d.peer, d.group, d.partitions, d.issuedAt, d.expiresAt, d.serial]
    case 'revocation':
      return [TRUST_VERSION, 'revocation', d.mesh, d.peer, d.serial, d.issuedAt, d.reason]
    case 'rules':
      return [TRUST_VERSION, 'rules', d.mesh, d.version, d.issuedAt, d.groups, d.tables, d.otherTables]
  }
}

/** Signs a document with the authority key (which must be the mesh's). */
export async function signDocument<T extends TrustDocument>(document: T, authority: PrivateKey): Promise<Signed<T>> {
  if (meshIdOf(authority.publicKey) !== document.mesh) throw new TrustError('AUTHORITY_MISMATCH', `this authority key is for mesh ${meshIdOf(authority.publicKey)}, not ${document.mesh}`)
  const payload = encode(payloadOf(document))
  const signature = await authority.sign(payload)
  return { document, payload, signature }
}

export function encodeSigned(signed: Signed<TrustDocument>): Uint8Array {
  return encode([signed.payload, signed.signature])
}

// ---- decoding and validation ------------------------------------------------------------------

function fail(what: string): never {
  throw new TrustError('DOCUMENT_INVALID', `trust document refused: ${what}`)
}

function str(v: unknown, what: string, max = MAX_KEY_BYTES): string {
  if (typeof v !== 'string' || v === '' || v.includes('\u0000') || utf8Length(v) > max) fail(`${what} must be a non-empty string of at most ${max} bytes`)
  return v
}

function time(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} must be a time in milliseconds`)
  return v
}

function group(v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME_PATTERN.test(v)) fail(`${what} must be a group name (a letter, then letters, digits or _)`)
  return v
}

function map(v: unknown, what: string, max: number): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) fail(`${what} must be a map`)
  const entries = Object.keys(v)
  if (entries.length > max) fail(`${what} has ${entries.length} entries, over ${max}`)
  return v as Record<string, unknown>
}

function grants(v: unknown, what: string): Record<string, Grant> {
  const out: Record<string, Grant> = {}
  for (const [g, grant] of Object.entries(map(v, what, MAX_GROUPS + 1))) {
    if (g !== '*') group(g, `${what} group`)
    if (grant !== '*' && grant !== 'own') fail(`${what}.${g} must be "*" or "own"`)
    out[g] = grant
  }
  return out
}

function tableRule(v: unknown, what: string): TableRule {
  const m = map(v, what, 2)
  for (const k of Object.keys(m)) if (k !== 'write' && k !== 'read') fail(`${what} has an unknown field '${k}' (allowed: write, read)`)
  return { write: grants(m.write ?? {}, `${what}.write`), read: grants(m.read ?? {}, `${what}.read`) }
}

function parseDocument(payload: Uint8Array): TrustDocument {
  let v: unknown
  try {
    v = decode(payload)
  } catch {
    fail('not valid CBOR')
  }
  if (!Array.isArray(v) || v.length < 3) fail('not a [version, kind, mesh, …] array')
  if (v[0] !== TRUST_VERSION) fail(`version ${JSON.stringify(v[0])}; this peer reads ${TRUST_VERSION}`)
  const mesh = str(v[2], 'mesh')
  switch (v[1]) {
    case 'admission': {
      if (v.length !== 9) fail('an admission has 9 fields')
      const partitions = v[5]
      if (!Array.isArray(partitions) || partitions.length > MAX_OWN_PARTITIONS) fail(`partitions must be a list of at most ${MAX_OWN_PARTITIONS}`)
      return {
        kind: 'admission',
        mesh,
        peer: str(v[3], 'peer'),
        group: group(v[4], 'group'),
        partitions: partitions.map((p) => {
          if (typeof p !== 'string' || p.includes('\u0000') || utf8Length(p) > MAX_KEY_BYTES) fail('a partition must be a string')
          return p
        }),
        issuedAt: time(v[6], 'issuedAt'),
        expiresAt: time(v[7], 'expiresAt'),
        serial: str(v[8], 'serial', 128),
      }
    }
    case 'revocation':
      if (v.length !== 7) fail('a revocation has 7 fields')
      return { kind: 'revocation', mesh, peer: str(v[3], 'peer'), serial: str(v[4], 'serial', 128), issuedAt: time(v[5], 'issuedAt'), reason: typeof v[6] === 'string' ? v[6].slice(0, 500) : fail('reason must be text') }
    case 'rules': {
      if (v.length !== 8) fail('rules have 8 fields')
      if (typeof v[3] !== 'number' || !Number.isSafeInteger(v[3]) || v[3] < 1) fail('version must be a positive integer')
      const groups: Record<string, { relay: boolean }> = {}
      for (const [g, spec] of Object.entries(map(v[5], 'groups', MAX_GROUPS))) {
        group(g, 'group')
        const s = map(spec, `groups.${g}`, 1)
        if (s.relay !== undefined && typeof s.relay !== 'boolean') fail(`groups.${g}.relay must be true or false`)
        groups[g] = { relay: s.relay === true }
      }
      const tables: Record<string, TableRule> = {}
      for (const [t, rule] of Object.entries(map(v[6], 'tables', MAX_RULE_TABLES))) {
        if (t !== CATALOG_TABLE && !NAME_PATTERN.test(t)) fail(`table name ${JSON.stringify(t.slice(0, 80))} is not valid`)
        tables[t] = tableRule(rule, `tables.${t}`)
      }
      return { kind: 'rules', mesh, version: v[3], issuedAt: time(v[4], 'issuedAt'), groups, tables, otherTables: tableRule(v[7], 'otherTables') }
    }
    default:
      fail(`kind ${JSON.stringify(v[1])} is unknown`)
  }
}

/**
 * Decodes a signed document and checks it is well formed, of `mesh`, and signed by that mesh's
 * authority. Validity in time and revocation are the membership's to judge.
 */
export async function openSigned(bytes: Uint8Array, mesh: string): Promise<Signed<TrustDocument>> {
  if (bytes.length > MAX_DOCUMENT_BYTES) fail(`${bytes.length} bytes, over the ${MAX_DOCUMENT_BYTES}-byte limit`)
  let envelope: unknown
  try {
    envelope = decode(bytes)
  } catch {
    fail('not valid CBOR')
  }
  if (!Array.isArray(envelope) || envelope.length !== 2 || !(envelope[0] instanceof Uint8Array) || !(envelope[1] instanceof Uint8Array)) fail('not a [payload, signature] pair')
  const [payload, signature] = envelope as [Uint8Array, Uint8Array]
  const document = parseDocument(payload)
  if (document.mesh !== mesh) throw new TrustError('WRONG_MESH', `trust document refused: it is for mesh ${document.mesh}, this peer belongs to ${mesh}`)
  const ok = await authorityKeyOf(mesh).verify(payload, signature)
  if (!ok) throw new TrustError('SIGNATURE_INVALID', `trust document refused: its ${document.kind} is not signed by the authority of mesh ${mesh}`)
  return { document, payload, signature }
}

// Over 400 lines on purpose: both folder kinds share their formats, checks and file helpers, and
// every operator verb (create, admit, revoke, rules, load) reads and writes them; the pure parts
// (documents, rules source, swarm key) are in trust/.
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import * as v from 'valibot'
import { ConfigError, DEFAULT_ADMISSION_DAYS, MAX_ADMISSION_DAYS, type PeerConfig } from '../config.js'
import { MAX_KEY_BYTES, NAME_PATTERN } from '../constants.js'
import type { Logger } from '../log.js'
import { loadOrCreatePeerKey } from '../net/identity.js'
import { encodeSigned, MAX_OWN_PARTITIONS, meshIdOf, openSigned, signDocument, type Admission, type Revocation, type Rules, type Signed } from '../trust/documents.js'
import { TrustError } from '../trust/errors.js'
import type { MeshMaterial } from '../trust/material.js'
import { encodeJoinCode } from '../trust/join-code.js'
import { Membership } from '../trust/membership.js'
import { parseRulesText, type RulesSource } from '../trust/rules-source.js'
import { formatSwarmKey, parseSwarmKey, SWARM_KEY_BYTES } from '../trust/swarm-key.js'
import { fields, integerIn, parseWith } from '../validation.js'

/*
 * The mesh on disk (docs/trust.md, "Mesh folders"). Two kinds of folder:
 *
 * An AUTHORITY folder — what creates the mesh, admits, revokes and sets rules; keep it offline:
 *   authority.key   the authority's Ed25519 private key (0600); its public key is the mesh id
 *   swarm.key       the mesh secret (0600), the libp2p private network key
 *   rules.json      the rules as people edit them (`shoal mesh rules` signs a new version)
 *   mesh.json       mesh id, name, the serial counter, and every signed document issued
 *
 * A MEMBER folder — what a peer needs to run in the mesh (written by `shoal mesh admit`):
 *   mesh.json       mesh id, name, the peer it was written for
 *   swarm.key       the mesh secret (0600)
 *   admission.signed  this peer's admission, signed by the authority
 *   rules.signed    the newest rules known when the folder was written
 *   revocations/    signed revocations (*.signed), a grow-only set
 *
 * Nothing here is trusted for being local: every signed document is checked against the mesh id
 * when loaded, and the peer checks them again (Membership).
 */

export const AUTHORITY_KEY_FILE = 'authority.key'
export const SWARM_KEY_FILE = 'swarm.key'
export const RULES_SOURCE_FILE = 'rules.json'
export const MESH_FILE = 'mesh.json'
export const ADMISSION_FILE = 'admission.signed'
export const RULES_FILE = 'rules.signed'
export const REVOCATIONS_DIR = 'revocations'
/** Secrets (the authority key, the swarm key) are readable by their owner only. */
export const SECRET_MODE = 0o600
const FOLDER_MODE = 0o700
const FORMAT = 1
/** A mesh.json larger than this is not one Shoal wrote (an authority with 100,000 admissions stays far below). */
const MAX_MESH_FILE_BYTES = 256 * 1024 * 1024
const MAX_DOCUMENT_FILE_BYTES = 64 * 1024
const MAX_REVOCATION_FILES = 100_000
const DAY_MS = 24 * 3600 * 1000

// ---- small file helpers ------------------------------------------------------------------------

function where(dir: string): string {
  const rel = relative(process.cwd(), dir)
  return rel === '' ? '.' : rel.startsWith('..') ? dir : rel
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new ConfigError(`cannot read '${path}': ${(error as Error).message}`)
  }
}

/** Writes `bytes` to `path` through a synced temp file and a rename: readers see the old file or the new one. */
async function writeAtomic(path: string, bytes: Uint8Array | string, mode = 0o644): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'wx', mode)
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw new ConfigError(`cannot write '${path}': ${(error as Error).message}`)
  }
}

/** Creates a file that must not exist yet (a secret is never overwritten). */
async function writeNew(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  try {
    const handle = await open(path, 'wx', mode)
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new ConfigError(`'${path}' already exists; it is never overwritten (remove it yourself if it is a leftover)`)
    throw new ConfigError(`cannot write '${path}': ${(error as Error).message}`)
  }
}

async function makeFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: FOLDER_MODE })
  } catch (error) {
    throw new ConfigError(`cannot create folder '${dir}': ${(error as Error).message}`)
  }
}

async function readLimited(path: string, max: number, missing: () => string): Promise<Buffer> {
  let info
  try {
    info = await stat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(missing())
    throw new ConfigError(`cannot read '${path}': ${(error as Error).message}`)
  }
  if (!info.isFile()) throw new ConfigError(`'${path}' is not a file`)
  if (info.size > max) throw new ConfigError(`'${path}' is ${info.size} bytes, more than such a file ever holds (${max}); it is not one Shoal wrote`)
  return readFile(path)
}

/** A secret file must be readable by its owner only: anyone else who can read it can join the mesh. */
async function readSecret(path: string, missing: () => string): Promise<Buffer> {
  const bytes = await readLimited(path, MAX_DOCUMENT_FILE_BYTES, missing)
  const mode = (await stat(path)).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(`'${path}' is readable by others (mode ${mode.toString(8).padStart(4, '0')}); it is a secret: run \`chmod 600 ${path}\` (and check who may have copied it)`)
  }
  return bytes
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'))

// ---- mesh.json ---------------------------------------------------------------------------------

const text = (max = MAX_KEY_BYTES) => v.pipe(v.string('must be a string'), v.maxLength(max, `must be at most ${max} characters`))
const issued = fields(
  {
    kind: v.picklist(['admission', 'revocation', 'rules'] as const, 'must be admission, revocation or rules'),
    peer: v.optional(text()),
    serial: v.optional(text(128)),
    at: text(64),
    signed: text(MAX_DOCUMENT_FILE_BYTES * 2),
  },
  'must be an issued document { kind, peer?, serial?, at, signed }',
)
const AUTHORITY_STATE = fields(
  {
    format: v.literal(FORMAT, `must be ${FORMAT}`),
    role: v.literal('authority', 'must be "authority"'),
    mesh: text(),
    name: text(),
    serial: integerIn(0, Number.MAX_SAFE_INTEGER),
    rulesVersion: integerIn(1, Number.MAX_SAFE_INTEGER),
    issued: v.array(issued, 'must be a list of issued documents'),
  },
  'must be a JSON object',
)
const MEMBER_STATE = fields(
  { format: v.literal(FORMAT, `must be ${FORMAT}`), role: v.literal('member', 'must be "member"'), mesh: text(), name: text(), peer: text() },
  'must be a JSON object',
)
type AuthorityState = v.InferOutput<typeof AUTHORITY_STATE>
type MemberState = v.InferOutput<typeof MEMBER_STATE>

async function readMeshFile(dir: string, missing: () => string): Promise<{ role: unknown; value: unknown; path: string }> {
  const path = join(dir, MESH_FILE)
  const bytes = await readLimited(path, MAX_MESH_FILE_BYTES, missing)
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON: ${(error as Error).message}`)
  }
  const role = typeof value === 'object' && value !== null ? (value as { role?: unknown }).role : undefined
  return { role, value, path }
}

const jsonText = (value: unknown): string => JSON.stringify(value, null, 2) + '\n'

// ---- the authority folder ----------------------------------------------------------------------

export interface Authority {
  dir: string
  mesh: string
  key: PrivateKey
  swarmKey: Uint8Array
  state: AuthorityState
  rules: Signed<Rules>
}

function latestRules(state: AuthorityState): string {
  const rules = state.issued.filter((d) => d.kind === 'rules')
  const last = rules[rules.length - 1]
  if (last === undefined) throw new ConfigError(`the authority's ${MESH_FILE} holds no signed rules; it is damaged`)
  return last.signed
}

/** Reads and checks an authority folder: files present, secrets 0600, the key is the mesh's. */
export async function loadAuthority(dir: string): Promise<Authority> {
  const abs = resolve(dir)
  const missingFolder = (): string => `no mesh authority at '${where(abs)}' (no ${MESH_FILE}); create one with \`shoal mesh create --dir ${where(abs)}\``
  const { role, value, path } = await readMeshFile(abs, missingFolder)
  if (role === 'member') throw new ConfigError(`'${where(abs)}' is a member folder, not an authority folder: pass the folder \`shoal mesh create\` wrote (the one holding ${AUTHORITY_KEY_FILE})`)
  const state = parseWith(AUTHORITY_STATE, value, { source: path, what: 'the authority state', error: (m) => new ConfigError(m) })
  const keyPath = join(abs, AUTHORITY_KEY_FILE)
  const keyBytes = await readSecret(keyPath, () => `the authority folder '${where(abs)}' has no ${AUTHORITY_KEY_FILE}; it is needed to admit, revoke and set rules: restore it from your offline copy`)
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(keyBytes)
  } catch (error) {
    throw new ConfigError(`'${keyPath}' is not a private key (${(error as Error).message}); restore it from your offline copy`)
  }
  if (key.type !== 'Ed25519') throw new ConfigError(`'${keyPath}' is a ${key.type} key; a mesh authority key is Ed25519`)
  if (meshIdOf(key.publicKey) !== state.mesh) {
    throw new TrustError('AUTHORITY_MISMATCH', `wrong key: '${keyPath}' is the authority key of mesh ${meshIdOf(key.publicKey)}, but ${MESH_FILE} is for mesh ${state.mesh}; put back this mesh's ${AUTHORITY_KEY_FILE}`)
  }
  const swarmPath = join(abs, SWARM_KEY_FILE)
  const swarmKey = parseSwarmKey(await readSecret(swarmPath, () => `the authority folder '${where(abs)}' has no ${SWARM_KEY_FILE}; restore it from a member folder or your offline copy`), swarmPath)
  const rules = (await openSigned(unb64(latestRules(state)), state.mesh)) as Signed<Rules>
  return { dir: abs, mesh: state.mesh, key, swarmKey, state, rules }
}

async function saveState(authority: Authority): Promise<void> {
  await writeAtomic(join(authority.dir, MESH_FILE), jsonText(authority.state))
}

function record(authority: Authority, signed: Signed<Admission | Revocation | Rules>, now: number): void {
  const d = signed.document
  authority.state.issued.push({
    kind: d.kind,
    ...(d.kind === 'rules' ? {} : { peer: d.peer, serial: d.serial }),
    at: new Date(now).toISOString(),
    signed: b64(encodeSigned(signed)),
  })
}

export interface CreateMeshOptions {
  /** For people: shown by `shoal mesh show`, logged by peers. */
  name?: string
  rules: RulesSource
  now?: number
}

/** Creates an authority folder for a new mesh (a new authority key, a new secret, rules version 1). */
export async function createMesh(dir: string, options: CreateMeshOptions): Promise<{ mesh: string; dir: string }> {
  const abs = resolve(dir)
  if (await exists(join(abs, MESH_FILE))) throw new ConfigError(`'${where(abs)}' already holds a mesh (${MESH_FILE}); a mesh is created once: pick another folder`)
  if (await exists(join(abs, AUTHORITY_KEY_FILE))) {
    throw new ConfigError(`'${where(abs)}' holds an ${AUTHORITY_KEY_FILE} but no ${MESH_FILE} (an interrupted create?): move it away, then create the mesh again`)
  }
  await makeFolder(abs)
  const now = options.now ?? Date.now()
  const key = await generateKeyPair('Ed25519')
  const mesh = meshIdOf(key.publicKey)
  const name = options.name ?? `mesh ${mesh.slice(-8)}`
  await writeNew(join(abs, AUTHORITY_KEY_FILE), privateKeyToProtobuf(key), SECRET_MODE)
  await writeAtomic(join(abs, SWARM_KEY_FILE), formatSwarmKey(randomBytes(SWARM_KEY_BYTES)), SECRET_MODE)
  await writeAtomic(join(abs, RULES_SOURCE_FILE), jsonText(options.rules))
  const rules = await signDocument<Rules>({ kind: 'rules', mesh, version: 1, issuedAt: now, ...options.rules }, key)
  const state: AuthorityState = { format: FORMAT, role: 'authority', mesh, name, serial: 0, rulesVersion: 1, issued: [] }
  const authority: Authority = { dir: abs, mesh, key, swarmKey: new Uint8Array(), state, rules }
  record(authority, rules, now)
  // mesh.json last: its presence says the folder is complete.
  await saveState(authority)
  return { mesh, dir: abs }
}

export interface AdmitOptions {
  /** The peer's id (`shoal id` prints it). */
  peer: string
  group: string
  /** The peer's own partitions: what rules granting "own" mean for it (a store: its store number). */
  partitions?: string[]
  /** How long the admission is valid (default DEFAULT_ADMISSION_DAYS). */
  days?: number
  /** Write a member folder for the peer here (its whole kit: secret, admission, rules, revocations). */
  out?: string
  now?: number
}

function checkPeerId(peer: string): void {
  let ok = false
  try {
    const id = peerIdFromString(peer)
    ok = id.type === 'Ed25519'
  } catch {
    ok = false
  }
  if (!ok) throw new ConfigError(`'${peer.slice(0, 80)}' is not a peer id (12D3KooW…); run \`shoal id --config <the peer's config>\` on the peer to get it`)
}

/** Signs an admission; writes the member folder when `out` is given. */
export async function admitPeer(authorityDir: string, options: AdmitOptions): Promise<{ admission: Admission; bytes: Uint8Array; memberDir: string | null; joinCode: string }> {
  const authority = await loadAuthority(authorityDir)
  checkPeerId(options.peer)
  const rules = authority.rules.document
  if (!NAME_PATTERN.test(options.group) || !Object.hasOwn(rules.groups, options.group)) {
    throw new TrustError('GROUP_UNKNOWN', `group '${options.group.slice(0, 80)}' is not in the mesh's rules (version ${rules.version}; groups: ${Object.keys(rules.groups).join(', ')})`)
  }
  const partitions = options.partitions ?? []
  if (partitions.length > MAX_OWN_PARTITIONS) throw new ConfigError(`an admission names at most ${MAX_OWN_PARTITIONS} partitions, not ${partitions.length}`)
  for (const p of partitions) if (p.includes('\u0000') || Buffer.byteLength(p) > MAX_KEY_BYTES) throw new ConfigError(`partition '${p.slice(0, 80)}' is not a partition value`)
  const days = options.days ?? DEFAULT_ADMISSION_DAYS
  if (!Number.isInteger(days) || days < 1 || days > MAX_ADMISSION_DAYS) throw new ConfigError(`days must be an integer from 1 to ${MAX_ADMISSION_DAYS} (got ${days})`)
  const now = options.now ?? Date.now()
  authority.state.serial++
  const admission: Admission = {
    kind: 'admission',
    mesh: authority.mesh,
    peer: options.peer,
    group: options.group,
    partitions: [...new Set(partitions)],
    issuedAt: now,
    expiresAt: now + days * DAY_MS,
    serial: String(authority.state.serial),
  }
  const signed = await signDocument(admission, authority.key)
  record(authority, signed, now)
  // Recorded before the member folder is written: a serial is never issued twice.
  await saveState(authority)
  const bytes = encodeSigned(signed)
  let memberDir: string | null = null
  if (options.out !== undefined) memberDir = await writeMemberFolder(authority, options.out, options.peer, bytes)
  // What a member folder holds but the secret, for a browser tab (trust/join-code.ts).
  const joinCode = encodeJoinCode({ mesh: authority.mesh, documents: [bytes, encodeSigned(authority.rules), ...revocationsOf(authority)] })
  return { admission, bytes, memberDir, joinCode }
}

function revocationsOf(authority: Authority): Uint8Array[] {
  return authority.state.issued.filter((d) => d.kind === 'revocation').map((d) => unb64(d.signed))
}

async function writeMemberFolder(authority: Authority, out: string, peer: string, admission: Uint8Array): Promise<string> {
  const abs = resolve(out)
  if (abs === authority.dir) throw new ConfigError('the member folder cannot be the authority folder: the authority key must not travel with it')
  if (await exists(join(abs, AUTHORITY_KEY_FILE))) throw new ConfigError(`'${where(abs)}' holds an authority key; write the member folder elsewhere`)
  if (await exists(join(abs, MESH_FILE))) {
    const { role, value } = await readMeshFile(abs, () => '')
    const other = role === 'member' ? (value as { mesh?: unknown; peer?: unknown }) : null
    if (other === null || other.mesh !== authority.mesh || other.peer !== peer) {
      throw new ConfigError(`'${where(abs)}' already holds a mesh folder of ${other === null ? 'another kind' : `peer ${String(other.peer)} in mesh ${String(other.mesh)}`}; pick an empty folder`)
    }
  }
  await makeFolder(abs)
  await makeFolder(join(abs, REVOCATIONS_DIR))
  const state: MemberState = { format: FORMAT, role: 'member', mesh: authority.mesh, name: authority.state.name, peer }
  await writeAtomic(join(abs, SWARM_KEY_FILE), authority.swarmKey, SECRET_MODE)
  await chmod(join(abs, SWARM_KEY_FILE), SECRET_MODE)
  await writeAtomic(join(abs, ADMISSION_FILE), admission)
  await writeAtomic(join(abs, RULES_FILE), encodeSigned(authority.rules))
  for (const r of revocationsOf(authority)) await deliverRevocation(abs, r)
  await writeAtomic(join(abs, MESH_FILE), jsonText(state))
  return abs
}

function revocationFile(bytes: Uint8Array): string {
  // Named by content: delivering the same revocation twice writes one file.
  return `${Buffer.from(bytes.subarray(bytes.length - 16)).toString('hex')}.signed`
}

async function deliverRevocation(memberDir: string, bytes: Uint8Array): Promise<void> {
  await makeFolder(join(memberDir, REVOCATIONS_DIR))
  await writeAtomic(join(memberDir, REVOCATIONS_DIR, revocationFile(bytes)), bytes)
}

/** Member folders to hand a new document to must be member folders of this mesh. */
async function checkMemberOf(authority: Authority, dir: string): Promise<string> {
  const abs = resolve(dir)
  const { role, value, path } = await readMeshFile(abs, () => `no member folder at '${where(abs)}' (no ${MESH_FILE})`)
  if (role !== 'member') throw new ConfigError(`'${where(abs)}' is not a member folder`)
  const state = parseWith(MEMBER_STATE, value, { source: path, what: 'the member state', error: (m) => new ConfigError(m) })
  if (state.mesh !== authority.mesh) throw new TrustError('WRONG_MESH', `'${where(abs)}' is a member folder of mesh ${state.mesh}, not of ${authority.mesh}`)
  return abs
}

export interface RevokeOptions {
  peer: string
  reason?: string
  /** Member folders to put the revocation in (it spreads through the mesh from any member holding it). */
  out?: string[]
  now?: number
}

/** Signs a revocation of every admission of `peer`; records it, and hands it to the `out` member folders. */
export async function revokePeer(authorityDir: string, options: RevokeOptions): Promise<{ revocation: Revocation; bytes: Uint8Array; delivered: string[] }> {
  const authority = await loadAuthority(authorityDir)
  checkPeerId(options.peer)
  const admitted = authority.state.issued.some((d) => d.kind === 'admission' && d.peer === options.peer)
  if (!admitted) throw new TrustError('NOT_ADMITTED', `peer ${options.peer} is not in the mesh: this authority never admitted it (nothing to revoke)`)
  const targets = await Promise.all((options.out ?? []).map((d) => checkMemberOf(authority, d)))
  const now = options.now ?? Date.now()
  const revocation: Revocation = { kind: 'revocation', mesh: authority.mesh, peer: options.peer, serial: '*', issuedAt: now, reason: (options.reason ?? '').slice(0, 500) }
  const signed = await signDocument(revocation, authority.key)
  record(authority, signed, now)
  await saveState(authority)
  const bytes = encodeSigned(signed)
  for (const dir of targets) await deliverRevocation(dir, bytes)
  return { revocation, bytes, delivered: targets }
}

/** Signs `rules` as the next version; writes rules.json, records it, hands it to the `out` member folders. */
export async function setRules(authorityDir: string, rules: RulesSource, options: { out?: string[]; now?: number } = {}): Promise<{ rules: Rules; bytes: Uint8Array; delivered: string[] }> {
  const authority = await loadAuthority(authorityDir)
  const targets = await Promise.all((options.out ?? []).map((d) => checkMemberOf(authority, d)))
  const now = options.now ?? Date.now()
  const version = authority.rules.document.version + 1
  const signed = await signDocument<Rules>({ kind: 'rules', mesh: authority.mesh, version, issuedAt: now, ...rules }, authority.key)
  record(authority, signed, now)
  authority.state.rulesVersion = version
  await writeAtomic(join(authority.dir, RULES_SOURCE_FILE), jsonText(rules))
  await saveState(authority)
  const bytes = encodeSigned(signed)
  for (const dir of targets) await writeAtomic(join(dir, RULES_FILE), bytes)
  return { rules: signed.document, bytes, delivered: targets }
}

/** Reads a rules source file (rules.json), checked. */
export async function readRulesFile(path: string): Promise<RulesSource> {
  const bytes = await readLimited(path, MAX_DOCUMENT_FILE_BYTES * 4, () => `no rules file at '${path}'`)
  return parseRulesText(bytes.toString('utf8'), path)
}

// ---- the member folder -------------------------------------------------------------------------

export interface MemberFolder {
  dir: string
  name: string
  material: MeshMaterial
  admission: Admission
  rules: Rules
  revocations: number
}

/**
 * Reads and checks a member folder: every file present, the secret 0600, the documents signed by
 * the mesh's authority, the admission for `peer` (when given: this peer's id), not expired, not
 * revoked. ConfigError for folder problems, TrustError for trust ones; each says what to do.
 */
export async function loadMemberFolder(dir: string, options: { peer?: string; now?: number } = {}): Promise<MemberFolder> {
  const abs = resolve(dir)
  const admitHint = `admit this peer: on the authority's machine run \`shoal mesh admit --authority <authority folder> --peer <this peer's id, from \`shoal id\`> --group <group> --out ${where(abs)}\``
  const { role, value, path } = await readMeshFile(abs, () => `no member folder at '${where(abs)}' (no ${MESH_FILE}); ${admitHint}`)
  if (role === 'authority') {
    throw new ConfigError(`'${where(abs)}' is an authority folder; a peer runs from a member folder (\`shoal mesh admit … --out DIR\` writes one), so the authority key can stay offline`)
  }
  const state = parseWith(MEMBER_STATE, value, { source: path, what: 'the member state', error: (m) => new ConfigError(m) })
  const missing = (file: string) => (): string => `the member folder '${where(abs)}' has no ${file}; write it again with \`shoal mesh admit … --out ${where(abs)}\``
  const swarmPath = join(abs, SWARM_KEY_FILE)
  const swarmKey = parseSwarmKey(await readSecret(swarmPath, missing(SWARM_KEY_FILE)), swarmPath)
  const admissionBytes = new Uint8Array(await readLimited(join(abs, ADMISSION_FILE), MAX_DOCUMENT_FILE_BYTES, missing(ADMISSION_FILE)))
  const rulesBytes = new Uint8Array(await readLimited(join(abs, RULES_FILE), MAX_DOCUMENT_FILE_BYTES, missing(RULES_FILE)))
  const revocations: Uint8Array[] = []
  let names: string[] = []
  try {
    names = (await readdir(join(abs, REVOCATIONS_DIR))).filter((n) => n.endsWith('.signed')).sort()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`cannot read '${join(abs, REVOCATIONS_DIR)}': ${(error as Error).message}`)
  }
  if (names.length > MAX_REVOCATION_FILES) throw new ConfigError(`'${join(abs, REVOCATIONS_DIR)}' holds ${names.length} files, over ${MAX_REVOCATION_FILES}`)
  for (const n of names) revocations.push(new Uint8Array(await readLimited(join(abs, REVOCATIONS_DIR, n), MAX_DOCUMENT_FILE_BYTES, () => `'${n}' vanished`)))

  const named = (file: string, error: unknown): never => {
    if (error instanceof TrustError) {
      const hint = error.code === 'SIGNATURE_INVALID' ? ' (wrong key: not signed by this mesh\'s authority)' : ''
      throw new TrustError(error.code, `${join(abs, file)}: ${error.message}${hint}`)
    }
    throw error
  }
  const membership = new Membership(state.mesh, () => options.now ?? Date.now())
  const rules = await membership.add(rulesBytes).catch((e: unknown) => named(RULES_FILE, e))
  if (rules.document.kind !== 'rules') throw new TrustError('DOCUMENT_INVALID', `${join(abs, RULES_FILE)} holds a ${rules.document.kind}, not rules`)
  for (const [i, r] of revocations.entries()) {
    const added = await membership.add(r).catch((e: unknown) => named(join(REVOCATIONS_DIR, names[i]!), e))
    if (added.document.kind !== 'revocation') throw new TrustError('DOCUMENT_INVALID', `${join(abs, REVOCATIONS_DIR, names[i]!)} holds a ${added.document.kind}, not a revocation`)
  }
  const opened = await openSigned(admissionBytes, state.mesh).catch((e: unknown) => named(ADMISSION_FILE, e))
  if (opened.document.kind !== 'admission') throw new TrustError('DOCUMENT_INVALID', `${join(abs, ADMISSION_FILE)} holds a ${opened.document.kind}, not an admission`)
  const admission = opened.document
  const peer = options.peer ?? admission.peer
  if (admission.peer !== peer) {
    throw new TrustError(
      'NOT_ADMITTED',
      `peer ${peer} is not in the mesh: the member folder '${where(abs)}' holds the admission of peer ${admission.peer}, not of this peer; ${admitHint}`,
    )
  }
  await membership.admit(peer, admissionBytes).catch((error: unknown) => {
    if (error instanceof TrustError && error.code === 'ADMISSION_EXPIRED') throw new TrustError(error.code, `${error.message}; ask the mesh's authority for a new one (\`shoal mesh admit … --out ${where(abs)}\`)`)
    throw error
  })
  return {
    dir: abs,
    name: state.name,
    material: { mesh: state.mesh, swarmKey, documents: [admissionBytes, rulesBytes, ...revocations] },
    admission,
    rules: rules.document,
    revocations: revocations.length,
  }
}

/** What a mesh folder is, by its mesh.json: null when there is none. */
export async function folderRole(dir: string): Promise<'authority' | 'member' | null> {
  const abs = resolve(dir)
  if (!(await exists(join(abs, MESH_FILE)))) return null
  const { role } = await readMeshFile(abs, () => '')
  if (role !== 'authority' && role !== 'member') throw new ConfigError(`${join(abs, MESH_FILE)}: 'role' must be "authority" or "member"`)
  return role
}

// ---- the peer's start ----------------------------------------------------------------------------

/** The config's `mesh` with paths made absolute (member folder and authority: relative to the data folder); null without one. */
export function meshFolderOf(config: PeerConfig, dataDir: string): { dir: string; create: NonNullable<Extract<PeerConfig['mesh'], { dir: string }>['create']> | null } | null {
  const mesh = config.mesh
  if (mesh === null) return null
  if (typeof mesh === 'string') return { dir: resolve(dataDir, mesh), create: null }
  return { dir: resolve(dataDir, mesh.dir), create: mesh.create === null ? null : { ...mesh.create, authority: resolve(dataDir, mesh.create.authority) } }
}

/**
 * What this peer brings to its start: the material of its private mesh (config `mesh`), or null
 * for an explicitly open mesh (config `open: true`). A config naming neither
 * is refused: a forgotten line must not open a peer's data to whoever reaches its port.
 *
 * With `mesh.create` and no member folder yet, creates the mesh (an authority folder), admits this
 * peer to it, writes its member folder, and logs how to admit further peers.
 */
export async function resolveMesh(config: PeerConfig, dataDir: string, logger: Logger): Promise<MeshMaterial | null> {
  // Chosen explicitly: `shoal start` says what it means (cli/start.ts); a library caller asked for it.
  if (config.open) return null
  const paths = meshFolderOf(config, dataDir)
  if (paths === null) {
    throw new ConfigError(
      'the config names no mesh: add "mesh": "<member folder>" (a private mesh; `shoal mesh create` and `shoal mesh admit` make one), ' +
        'or "open": true to let anyone who reaches the port read and write',
    )
  }
  const peer = peerIdFromPrivateKey(await loadOrCreatePeerKey(dataDir)).toString()
  if (paths.create !== null && !(await exists(join(paths.dir, MESH_FILE)))) await createAndJoin(paths.dir, paths.create, peer, logger)
  const folder = await loadMemberFolder(paths.dir, { peer })
  const days = Math.floor((folder.admission.expiresAt - Date.now()) / DAY_MS)
  logger.info(`mesh ${folder.name} (${folder.material.mesh}): this peer is in group '${folder.admission.group}'` + (folder.admission.partitions.length > 0 ? `, partitions ${folder.admission.partitions.join(', ')}` : '') + `, admission valid ${days} more days`, {
    mesh: folder.material.mesh,
    group: folder.admission.group,
    rulesVersion: folder.rules.version,
    revocations: folder.revocations,
  })
  if (days < 30) logger.warn(`this peer's admission expires on ${new Date(folder.admission.expiresAt).toISOString()}; ask the mesh's authority for a new one`)
  return folder.material
}

async function createAndJoin(memberDir: string, create: NonNullable<ReturnType<typeof meshFolderOf>>['create'] & object, peer: string, logger: Logger): Promise<void> {
  if (!(await exists(join(create.authority, MESH_FILE)))) {
    const rules = await readRulesFile(create.rules)
    const { mesh } = await createMesh(create.authority, { rules, ...(create.name === undefined ? {} : { name: create.name }) })
    logger.info(`created mesh ${mesh}: its authority folder is ${where(create.authority)} (the authority key: copy the folder somewhere safe and offline)`)
  }
  await admitPeer(create.authority, { peer, group: create.group, partitions: create.partitions, days: create.days, out: memberDir })
  const authority = where(create.authority)
  const groups = Object.keys((await loadAuthority(create.authority)).rules.document.groups).filter((g) => g !== create.group)
  logger.info(
    `admitted this peer (${peer}) to the mesh as '${create.group}'. To admit a peer whose config is on this machine: ` +
      groups.map((g) => `\`node bin/shoal.js mesh admit --authority ${authority} --config <its config> --group ${g}\``).join(' or ') +
      ` (its own partitions: those its config carries, or --partitions 1,2; writes its member folder where its config's "mesh" points). For a peer on another machine: run \`node bin/shoal.js id --config <its config>\` there, ` +
      `\`node bin/shoal.js mesh admit --authority ${authority} --peer <its id> --group <group> --partitions <…> --out <folder>\` here, and copy that folder to it`,
    { authority: create.authority },
  )
}

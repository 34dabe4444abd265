import { resolve } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ConfigError, type PeerConfig } from '../config.js'
import { ShoalError } from '../errors.js'
import { loadOrCreatePeerKey } from '../net/identity.js'
import { admitPeer, createMesh, folderRole, loadAuthority, loadMemberFolder, meshFolderOf, readRulesFile, revokePeer, setRules, MESH_FILE } from '../peer/mesh-folder.js'
import { openSigned, type Admission } from '../trust/documents.js'
import { describeRights, rulesSourceOf, type RulesSource } from '../trust/rules-source.js'
import { resolveConfig, type Options } from './options.js'

/** Flags of the mesh verbs (beside the shared Options). */
export interface MeshOptions {
  dir?: string
  name?: string
  rules?: string
  authority?: string
  peer?: string
  group?: string
  partitions?: string
  days?: string
  reason?: string
  out?: string
  /** admit: the web app's URL in the browser tab being admitted; prints the admission link. */
  link?: string
}

export class MeshUsageError extends ShoalError {
  constructor(message: string) {
    super('USAGE', message)
  }
}

export const MESH_VERBS = ['create', 'admit', 'revoke', 'rules', 'show'] as const
type MeshVerb = (typeof MESH_VERBS)[number]

/** Without --rules, a new mesh has one group whose members may read and write everything. */
const DEFAULT_RULES: RulesSource = {
  groups: { member: { relay: true } },
  tables: {},
  otherTables: { write: { member: '*' }, read: { member: '*' } },
}

const DAY_MS = 24 * 3600 * 1000
/** Where the example configs keep a peer's member folder, inside its data folder. */
const DEFAULT_MEMBER_FOLDER = 'mesh'

function need(value: string | undefined, flag: string, verb: string): string {
  if (value === undefined || value === '') throw new MeshUsageError(`shoal mesh ${verb} needs --${flag}`)
  return value
}

function print(options: Options, json: unknown, lines: string[]): void {
  console.log(options.json ? JSON.stringify(json, null, 2) : lines.join('\n'))
}

function listPartitions(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined
  return text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
}

/** The peer id of a data folder, its key created if missing (so an operator can get it before the first start). */
async function peerIdOf(dataDir: string): Promise<string> {
  return peerIdFromPrivateKey(await loadOrCreatePeerKey(resolve(dataDir))).toString()
}

/** `shoal id`: this data folder's peer id. */
export async function id(options: Options): Promise<void> {
  const config = await resolveConfig(options)
  const peer = await peerIdOf(config.data)
  print(options, { peerId: peer, data: resolve(config.data) }, [peer])
}

/** The partitions a config's peer carries of partially carried tables: its own, unless --partitions says otherwise. */
function carriedPartitions(config: PeerConfig): string[] {
  return [...new Set(Object.values(config.carries).flat())]
}

export async function mesh(verb: string | undefined, options: Options, flags: MeshOptions): Promise<void> {
  if (verb === undefined || !(MESH_VERBS as readonly string[]).includes(verb)) {
    throw new MeshUsageError(`shoal mesh needs one of ${MESH_VERBS.join(', ')}${verb === undefined ? '' : ` (got '${verb}')`}; see \`shoal help\``)
  }
  switch (verb as MeshVerb) {
    case 'create':
      return create(options, flags)
    case 'admit':
      return admit(options, flags)
    case 'revoke':
      return revoke(options, flags)
    case 'rules':
      return rules(options, flags)
    case 'show':
      return show(options, flags)
  }
}

async function create(options: Options, flags: MeshOptions): Promise<void> {
  const dir = need(flags.dir, 'dir', 'create')
  const source = flags.rules === undefined ? DEFAULT_RULES : await readRulesFile(flags.rules)
  const made = await createMesh(dir, { rules: source, ...(flags.name === undefined ? {} : { name: flags.name }) })
  print(options, { mesh: made.mesh, authority: made.dir }, [
    `created mesh ${made.mesh}`,
    `authority folder ${made.dir}`,
    `  authority.key and swarm.key are secrets (0600): keep this folder offline, with a backup;`,
    `  it is needed only to admit, revoke and change the rules.`,
    ...(flags.rules === undefined ? [`rules: one group 'member' that may read and write everything (pass --rules FILE for groups and rights)`] : []),
    `next: admit a peer with \`shoal mesh admit --authority ${dir} --peer <id from \`shoal id\`> --group <group> --out <member folder>\``,
  ])
}

async function admit(options: Options, flags: MeshOptions): Promise<void> {
  const authority = need(flags.authority, 'authority', 'admit')
  const group = need(flags.group, 'group', 'admit')
  let days: number | undefined
  if (flags.days !== undefined) {
    days = Number(flags.days)
    if (!/^\d+$/.test(flags.days)) throw new MeshUsageError(`--days must be a whole number of days (got '${flags.days}')`)
  }
  let peer = flags.peer
  let out = flags.out
  let partitions = listPartitions(flags.partitions)
  if (options.config !== undefined) {
    // A peer whose config is on this machine: its id from its data folder, its member folder where its config points.
    const config = await resolveConfig(options)
    const folder = meshFolderOf(config, resolve(config.data))
    if (folder === null) throw new ConfigError(`${options.config} names no "mesh" member folder; add "mesh": "mesh" (a folder inside its data folder) first`)
    if (folder.create !== null) throw new ConfigError(`${options.config} creates its own mesh on first start ("mesh.create"); admit peers to that mesh instead`)
    peer ??= await peerIdOf(config.data)
    out ??= folder.dir
    partitions ??= carriedPartitions(config)
  }
  if (peer === undefined) throw new MeshUsageError('shoal mesh admit needs --peer ID (run `shoal id` on the peer) or --config FILE (a peer config on this machine)')
  const link = flags.link === undefined ? undefined : pageUrl(flags.link)
  if (out === undefined && link === undefined) throw new MeshUsageError('shoal mesh admit needs --out MEMBERDIR (where to write the member folder to give the peer) or --link URL (a browser tab: the web app\'s address in that tab)')
  const made = await admitPeer(authority, { peer, group, ...(out === undefined ? {} : { out }), ...(partitions === undefined ? {} : { partitions }), ...(days === undefined ? {} : { days }) })
  const a = made.admission
  const joinLink = link === undefined ? null : `${link}#join=${made.joinCode}`
  print(options, { ...a, memberDir: made.memberDir, ...(joinLink === null ? {} : { link: joinLink }) }, [
    `admitted ${a.peer} to mesh ${a.mesh}`,
    `  group ${a.group}, partitions ${a.partitions.length === 0 ? 'none' : a.partitions.join(', ')}, serial ${a.serial}, valid until ${new Date(a.expiresAt).toISOString()}`,
    ...(made.memberDir === null
      ? []
      : [
          `member folder ${made.memberDir}`,
          options.config === undefined
            ? `  copy it to the peer and name it in its config: "mesh": "<that folder, relative to its data folder>" (it holds no authority key)`
            : `  it is where ${options.config} names it: start that peer`,
        ]),
    ...(joinLink === null ? [] : ['open this link in the browser tab whose peer id was admitted (it holds the admission and the rules, no mesh secret):', joinLink]),
  ])
}

/** The web app's address for an admission link: an http(s) URL without a fragment of its own. */
function pageUrl(text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new MeshUsageError(`--link must be the web app's address as the tab shows it, e.g. http://192.168.1.10:7001/ui/?store=s1 (got '${text.slice(0, 200)}')`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MeshUsageError(`--link must be an http: or https: address (got '${url.protocol}')`)
  url.hash = ''
  return url.toString()
}

async function revoke(options: Options, flags: MeshOptions): Promise<void> {
  const authority = need(flags.authority, 'authority', 'revoke')
  const peer = need(flags.peer, 'peer', 'revoke')
  const made = await revokePeer(authority, { peer, ...(flags.reason === undefined ? {} : { reason: flags.reason }), ...(flags.out === undefined ? {} : { out: [flags.out] }) })
  print(options, { ...made.revocation, delivered: made.delivered }, [
    `revoked ${peer} in mesh ${made.revocation.mesh}${made.revocation.reason === '' ? '' : ` (${made.revocation.reason})`}`,
    made.delivered.length > 0
      ? `written into ${made.delivered.join(', ')}: the mesh learns it from that peer`
      : `recorded in ${resolve(authority, MESH_FILE)}; bring it into the mesh with --out <a member folder> (any member passes it on)`,
  ])
}

async function rules(options: Options, flags: MeshOptions): Promise<void> {
  const authority = need(flags.authority, 'authority', 'rules')
  const file = need(flags.rules, 'rules', 'rules')
  const made = await setRules(authority, await readRulesFile(file), flags.out === undefined ? {} : { out: [flags.out] })
  print(options, { version: made.rules.version, mesh: made.rules.mesh, delivered: made.delivered }, [
    `rules version ${made.rules.version} signed for mesh ${made.rules.mesh}`,
    ...Object.keys(made.rules.groups).flatMap((g) => [`  group ${g}:`, ...describeRights(made.rules, g, []).map((l) => `    ${l}`)]),
    made.delivered.length > 0 ? `written into ${made.delivered.join(', ')}: the mesh learns them from that peer` : `bring them into the mesh with --out <a member folder> (any member passes them on)`,
  ])
}

function daysLeft(expiresAt: number): string {
  const days = Math.floor((expiresAt - Date.now()) / DAY_MS)
  return days < 0 ? 'expired' : `${days} days left`
}

async function show(options: Options, flags: MeshOptions): Promise<void> {
  let dir: string
  let peer: string | undefined
  if (flags.dir !== undefined) dir = resolve(flags.dir)
  else {
    const config = await resolveConfig(options)
    const folder = meshFolderOf(config, resolve(config.data))
    // Without a config naming it, the member folder where the examples keep it: <data>/mesh.
    const fallback = resolve(config.data, DEFAULT_MEMBER_FOLDER)
    if (folder === null && (config.open || (await folderRole(fallback)) === null)) {
      const why = config.open ? 'it runs an open mesh ("open": true): anyone who reaches its port may read and write' : `its config names no "mesh" and ${fallback} holds no member folder`
      throw new ConfigError(`this peer is in no private mesh: ${why}`)
    }
    dir = folder?.dir ?? fallback
    peer = await peerIdOf(config.data)
  }
  if ((await folderRole(dir)) === 'authority') return showAuthority(options, dir)
  const m = await loadMemberFolder(dir, peer === undefined ? {} : { peer })
  const a = m.admission
  print(
    options,
    { mesh: m.material.mesh, name: m.name, peer: a.peer, group: a.group, partitions: a.partitions, serial: a.serial, expiresAt: new Date(a.expiresAt).toISOString(), rules: m.rules, revocations: m.revocations },
    [
      `mesh         ${m.name} (${m.material.mesh})`,
      `peer         ${a.peer}`,
      `group        ${a.group}${m.rules.groups[a.group]?.relay === true ? ' (relay: its merged rows are accepted)' : ''}`,
      `partitions   ${a.partitions.length === 0 ? 'none' : a.partitions.join(', ')}`,
      `admission    serial ${a.serial}, valid until ${new Date(a.expiresAt).toISOString()} (${daysLeft(a.expiresAt)})`,
      `rules        version ${m.rules.version}; this peer may:`,
      ...describeRights(m.rules, a.group, a.partitions).map((l) => `  ${l}`),
      `revocations  ${m.revocations}`,
    ],
  )
}

async function showAuthority(options: Options, dir: string): Promise<void> {
  const authority = await loadAuthority(dir)
  const rulesDoc = authority.rules.document
  const admissions: Admission[] = []
  const revoked = new Set<string>()
  for (const d of authority.state.issued) {
    if (d.kind === 'revocation' && d.peer !== undefined) revoked.add(d.peer)
    if (d.kind !== 'admission') continue
    const opened = await openSigned(new Uint8Array(Buffer.from(d.signed, 'base64')), authority.mesh)
    if (opened.document.kind === 'admission') admissions.push(opened.document)
  }
  // The newest admission of each peer is the one that counts.
  const newest = new Map<string, Admission>()
  for (const a of admissions) newest.set(a.peer, a)
  const source = rulesSourceOf(rulesDoc)
  print(
    options,
    { mesh: authority.mesh, name: authority.state.name, rules: rulesDoc, admitted: [...newest.values()].map((a) => ({ ...a, revoked: revoked.has(a.peer) })), revocations: revoked.size },
    [
      `mesh         ${authority.state.name} (${authority.mesh})`,
      `authority    ${authority.dir} (keep offline)`,
      `rules        version ${rulesDoc.version}`,
      ...Object.keys(source.groups).flatMap((g) => [`  group ${g}${source.groups[g]!.relay ? ' (relay)' : ''}:`, ...describeRights(source, g, []).map((l) => `    ${l}`)]),
      `admitted     ${newest.size}`,
      ...[...newest.values()].map((a) => `  ${a.peer}  ${a.group}  partitions ${a.partitions.join(',') || '-'}  ${revoked.has(a.peer) ? 'REVOKED' : daysLeft(a.expiresAt)}`),
      `revocations  ${revoked.size}`,
    ],
  )
}

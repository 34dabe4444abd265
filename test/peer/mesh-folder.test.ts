import { chmod, copyFile, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config.js'
import { MemoryLogger } from '../../src/log.js'
import { loadOrCreatePeerKey } from '../../src/net/identity.js'
import {
  ADMISSION_FILE,
  admitPeer,
  AUTHORITY_KEY_FILE,
  createMesh,
  loadAuthority,
  loadMemberFolder,
  MESH_FILE,
  resolveMesh,
  revokePeer,
  RULES_SOURCE_FILE,
  setRules,
  SWARM_KEY_FILE,
} from '../../src/peer/mesh-folder.js'
import { meshIdOf } from '../../src/trust/documents.js'
import { Membership } from '../../src/trust/membership.js'
import { parseRulesText, type RulesSource } from '../../src/trust/rules-source.js'
import { tempDir } from '../helpers/tempdir.js'

const DAY = 24 * 3600 * 1000

async function rules(): Promise<RulesSource> {
  return parseRulesText(await readFile('peers/rules.json', 'utf8'), 'peers/rules.json')
}

async function peerId(): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777

async function mesh(): Promise<{ dir: string; authority: string; mesh: string }> {
  const dir = await tempDir()
  const authority = join(dir, 'authority')
  const made = await createMesh(authority, { name: 'test mesh', rules: await rules() })
  return { dir, authority, mesh: made.mesh }
}

describe('authority folder', () => {
  it('holds the authority key and the mesh secret (0600, folder 0700), the rules source, and the mesh id of the key', async () => {
    const { authority, mesh: id } = await mesh()
    expect(await mode(authority)).toBe(0o700)
    expect(await mode(join(authority, AUTHORITY_KEY_FILE))).toBe(0o600)
    expect(await mode(join(authority, SWARM_KEY_FILE))).toBe(0o600)
    expect(JSON.parse(await readFile(join(authority, RULES_SOURCE_FILE), 'utf8'))).toEqual(await rules())
    const loaded = await loadAuthority(authority)
    expect(meshIdOf(loaded.key.publicKey)).toBe(id)
    expect(loaded.rules.document.version).toBe(1)
    expect(loaded.state.name).toBe('test mesh')
    await expect(createMesh(authority, { rules: await rules() })).rejects.toThrow(/already holds a mesh .*created once/)
  })

  it('refuses the wrong key, a secret readable by others, and a folder that is not one', async () => {
    const { dir, authority } = await mesh()
    await chmod(join(authority, SWARM_KEY_FILE), 0o644)
    await expect(loadAuthority(authority)).rejects.toThrow(/swarm\.key' is readable by others \(mode 0644\).*chmod 600/)
    await chmod(join(authority, SWARM_KEY_FILE), 0o600)
    await writeFile(join(authority, AUTHORITY_KEY_FILE), privateKeyToProtobuf(await generateKeyPair('Ed25519')), { mode: 0o600 })
    await expect(admitPeer(authority, { peer: await peerId(), group: 'store' })).rejects.toMatchObject({ code: 'AUTHORITY_MISMATCH', message: expect.stringMatching(/^wrong key: .*authority key of mesh 12D3Koo.*but mesh\.json is for mesh/) })
    await expect(loadAuthority(join(dir, 'nowhere'))).rejects.toThrow(/no mesh authority at .*shoal mesh create --dir/)
  })
})

describe('admitting, revoking, setting rules', () => {
  it('writes a member folder with the secret, admission and rules, and no authority key; the peer loads it as its mesh material', async () => {
    const { dir, authority, mesh: id } = await mesh()
    const store = await peerId()
    const out = join(dir, 'store-1')
    const { admission, memberDir } = await admitPeer(authority, { peer: store, group: 'store', partitions: ['1'], days: 30, out })
    expect(memberDir).toBe(out)
    expect(admission).toMatchObject({ mesh: id, peer: store, group: 'store', partitions: ['1'], serial: '1' })
    expect(admission.expiresAt - admission.issuedAt).toBe(30 * DAY)
    expect((await readdir(out)).sort()).toEqual([ADMISSION_FILE, MESH_FILE, 'revocations', 'rules.signed', SWARM_KEY_FILE])
    expect(await mode(join(out, SWARM_KEY_FILE))).toBe(0o600)
    expect(await readFile(join(out, SWARM_KEY_FILE))).toEqual(await readFile(join(authority, SWARM_KEY_FILE)))

    const member = await loadMemberFolder(out, { peer: store })
    expect(member.material.mesh).toBe(id)
    expect(member.admission.group).toBe('store')
    // What the peer brings checks out for any other member, documents and all
    const membership = new Membership(id)
    for (const d of member.material.documents.slice(1)) await membership.add(d)
    expect(await membership.admit(store, member.material.documents[0]!)).toMatchObject({ group: 'store', partitions: ['1'] })
    expect(membership.mayWrite(store, 'sales', '1')).toBe(true)
    expect(membership.mayWrite(store, 'catalog', '')).toBe(false)

    // serials are never reused
    const again = await admitPeer(authority, { peer: await peerId(), group: 'hq' })
    expect(again.admission.serial).toBe('2')
    expect(again.memberDir).toBeNull()
  })

  it('refuses an unknown group, a malformed peer id, a member folder that is the authority folder', async () => {
    const { authority } = await mesh()
    await expect(admitPeer(authority, { peer: await peerId(), group: 'shop' })).rejects.toMatchObject({ code: 'GROUP_UNKNOWN', message: expect.stringMatching(/group 'shop' is not in the mesh's rules \(version 1; groups: hq, store\)/) })
    await expect(admitPeer(authority, { peer: 'QmNotAnId', group: 'store' })).rejects.toThrow(/is not a peer id .*shoal id/)
    await expect(admitPeer(authority, { peer: await peerId(), group: 'store', out: authority })).rejects.toThrow(/cannot be the authority folder/)
    await expect(admitPeer(authority, { peer: await peerId(), group: 'store', days: 0 })).rejects.toThrow(/days must be an integer from 1 to 3650/)
  })

  it('revokes a peer: the revocation reaches the member folders named, and a revoked peer cannot load its folder', async () => {
    const { dir, authority } = await mesh()
    const [hq, store] = [await peerId(), await peerId()]
    const hqDir = join(dir, 'hq')
    const storeDir = join(dir, 'store')
    await admitPeer(authority, { peer: hq, group: 'hq', out: hqDir })
    await admitPeer(authority, { peer: store, group: 'store', partitions: ['2'], out: storeDir })
    await expect(revokePeer(authority, { peer: await peerId() })).rejects.toMatchObject({ code: 'NOT_ADMITTED', message: expect.stringMatching(/is not in the mesh: this authority never admitted it/) })
    const { delivered } = await revokePeer(authority, { peer: store, reason: 'till stolen', out: [hqDir, storeDir] })
    expect(delivered).toEqual([hqDir, storeDir])
    const hqMember = await loadMemberFolder(hqDir, { peer: hq })
    expect(hqMember.revocations).toBe(1)
    expect(hqMember.material.documents).toHaveLength(3)
    await expect(loadMemberFolder(storeDir, { peer: store })).rejects.toMatchObject({ code: 'REVOKED', message: expect.stringMatching(/is revoked \(till stolen/) })
    // a peer admitted after a revocation gets it in its folder
    const late = join(dir, 'late')
    const latePeer = await peerId()
    await admitPeer(authority, { peer: latePeer, group: 'store', out: late })
    expect((await loadMemberFolder(late, { peer: latePeer })).revocations).toBe(1)
  })

  it('signs new rules as the next version and hands them to a member folder', async () => {
    const { dir, authority } = await mesh()
    const hq = await peerId()
    const hqDir = join(dir, 'hq')
    await admitPeer(authority, { peer: hq, group: 'hq', out: hqDir })
    const next = await rules()
    const changed: RulesSource = { ...next, tables: { ...next.tables, catalog: { write: { hq: '*', store: 'own' }, read: { '*': '*' } } } }
    const { rules: signed, delivered } = await setRules(authority, changed, { out: [hqDir] })
    expect(signed.version).toBe(2)
    expect(delivered).toEqual([hqDir])
    expect((await loadMemberFolder(hqDir, { peer: hq })).rules.version).toBe(2)
    expect(JSON.parse(await readFile(join(authority, RULES_SOURCE_FILE), 'utf8'))).toEqual(changed)
    expect((await setRules(authority, changed)).rules.version).toBe(3)
  })
})

describe('member folder checks', () => {
  it('says what is wrong: missing folder or file, secret readable by others, another peer, expired, another mesh, an authority folder', async () => {
    const { dir, authority } = await mesh()
    const store = await peerId()
    const out = join(dir, 'store')
    await admitPeer(authority, { peer: store, group: 'store', partitions: ['1'], days: 10, out })

    await expect(loadMemberFolder(join(dir, 'absent'), { peer: store })).rejects.toThrow(/no member folder at .*admit this peer: .*shoal mesh admit --authority/)
    await expect(loadMemberFolder(authority)).rejects.toThrow(/is an authority folder; a peer runs from a member folder/)
    await expect(loadMemberFolder(out, { peer: await peerId() })).rejects.toMatchObject({ code: 'NOT_ADMITTED', message: expect.stringMatching(/^peer 12D3Koo\w+ is not in the mesh: the member folder .* holds the admission of peer /) })
    await expect(loadMemberFolder(out, { peer: store, now: Date.now() + 11 * DAY })).rejects.toMatchObject({ code: 'ADMISSION_EXPIRED', message: expect.stringMatching(/expired at .*ask the mesh's authority for a new one/) })

    await chmod(join(out, SWARM_KEY_FILE), 0o640)
    await expect(loadMemberFolder(out, { peer: store })).rejects.toThrow(/readable by others \(mode 0640\).*chmod 600/)
    await chmod(join(out, SWARM_KEY_FILE), 0o600)

    // an admission of another mesh copied in
    const other = await mesh()
    const foreign = join(other.dir, 'store')
    await admitPeer(other.authority, { peer: store, group: 'store', out: foreign })
    await copyFile(join(foreign, ADMISSION_FILE), join(out, ADMISSION_FILE))
    await expect(loadMemberFolder(out, { peer: store })).rejects.toMatchObject({ code: 'WRONG_MESH', message: expect.stringMatching(/admission\.signed: trust document refused: it is for mesh/) })

    await unlink(join(out, ADMISSION_FILE))
    await expect(loadMemberFolder(out, { peer: store })).rejects.toThrow(/has no admission\.signed; write it again with `shoal mesh admit/)
  })
})

describe('resolveMesh (the peer start)', () => {
  it('an open config returns null; a config naming neither is refused', async () => {
    const logger = new MemoryLogger()
    const data = await tempDir()
    expect(await resolveMesh(parseConfig({ open: true }, 't'), data, logger)).toBeNull()
    await expect(resolveMesh(parseConfig({}, 't'), data, logger)).rejects.toThrow(/the config names no mesh: add "mesh": .* or "open": true/)
  })

  it('creates the mesh on first start, admits this peer, says how to admit others, and loads the same mesh after', async () => {
    const data = await tempDir()
    const logger = new MemoryLogger()
    const config = parseConfig({ mesh: { dir: 'mesh', create: { authority: 'authority', rules: 'peers/rules.json', group: 'hq', name: 'retail example' } } }, 't')
    const first = await resolveMesh(config, data, logger)
    const me = peerIdFromPrivateKey(await loadOrCreatePeerKey(data)).toString()
    expect(first).not.toBeNull()
    const member = await loadMemberFolder(join(data, 'mesh'), { peer: me })
    expect(member.admission.group).toBe('hq')
    expect(member.name).toBe('retail example')
    expect((await readdir(join(data, 'mesh'))).includes(AUTHORITY_KEY_FILE)).toBe(false)
    const log = logger.messages('info').join('\n')
    expect(log).toMatch(/created mesh 12D3Koo/)
    expect(log).toMatch(/mesh admit --authority \S*authority --config <its config> --group store/)
    const again = await resolveMesh(config, data, new MemoryLogger())
    expect(again!.mesh).toBe(first!.mesh)
    expect(again!.swarmKey).toEqual(first!.swarmKey)
  })
})

/*
 * Trust on and off (`--trust`): in the trusted pass every peer is a member of one private mesh
 * whose rules let every member write and read everything, so the same operations run as in the
 * open pass and the difference is the price of trust alone (signed changesets, the admission
 * handshake, the mesh secret, changeset anti-entropy).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreatePeerKey } from '../../src/net/identity.js'
import { encodeSigned, meshIdOf, signDocument, type Admission, type Rules } from '../../src/trust/documents.js'
import type { MeshMaterial } from '../../src/trust/material.js'
import type { ChangeSigner } from '../../src/store/core.js'
import { signChangeset } from '../../src/trust/changeset.js'

interface BenchMesh {
  authority: PrivateKey
  id: string
  rules: Uint8Array
  swarmKey: Uint8Array
  serial: number
}

let current: BenchMesh | null = null

/** Runs the peers started from now on in a fresh private mesh (true) or in an open one (false). */
export async function useTrust(on: boolean): Promise<void> {
  if (!on) {
    current = null
    return
  }
  const authority = await generateKeyPair('Ed25519')
  const id = meshIdOf(authority.publicKey)
  const everything = { write: { '*': '*' as const }, read: { '*': '*' as const } }
  const rules: Rules = { kind: 'rules', mesh: id, version: 1, issuedAt: Date.now() - 60_000, groups: { member: { relay: true } }, tables: {}, otherTables: everything }
  const hex = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')
  current = { authority, id, rules: encodeSigned(await signDocument(rules, authority)), swarmKey: new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}\n`), serial: 0 }
}

export const trusted = (): boolean => current !== null

/** The mesh material of the peer whose data folder is `dir` (its key created there), or undefined in an open pass. */
export async function materialFor(dir: string): Promise<MeshMaterial | undefined> {
  const mesh = current
  if (mesh === null) return undefined
  const peer = peerIdFromPrivateKey(await loadOrCreatePeerKey(dir)).toString()
  const admission: Admission = { kind: 'admission', mesh: mesh.id, peer, group: 'member', partitions: [], issuedAt: Date.now() - 60_000, expiresAt: Date.now() + 86_400_000, serial: String(++mesh.serial) }
  return { mesh: mesh.id, swarmKey: mesh.swarmKey, documents: [mesh.rules, encodeSigned(await signDocument(admission, mesh.authority))] }
}

/** What a store written before its peer starts needs in the trusted pass: the peer id as actor and a signer (its changes are changesets). */
export async function storeOptionsFor(dir: string): Promise<{ actor?: string; signer?: ChangeSigner }> {
  const mesh = current
  if (mesh === null) return {}
  const key = await loadOrCreatePeerKey(dir)
  const actor = peerIdFromPrivateKey(key).toString()
  return { actor, signer: { mesh: mesh.id, author: actor, sign: (c) => signChangeset(c, key) } }
}

import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Shoal } from '../../src/index.js'
import { TrustGate } from '../../src/sync/trust-gate.js'
import { signChangeset, type Changeset } from '../../src/trust/changeset.js'
import { encodeSigned, meshIdOf, signDocument, type Admission, type Revocation, type Rules } from '../../src/trust/documents.js'
import { Membership } from '../../src/trust/membership.js'
import type { MeshMaterial } from '../../src/trust/material.js'
import { loadOrCreatePeerKey } from '../../src/net/identity.js'

/*
 * A private mesh for tests: an authority, retail rules (hq writes the catalog and any stock;
 * stores write their own stock and sales; a `hub` group reads everything and writes nothing, to
 * relay), and members admitted to it.
 */

export const DAY = 24 * 3600 * 1000

export function retailRules(mesh: string, version = 1): Rules {
  return {
    kind: 'rules',
    mesh,
    version,
    issuedAt: Date.now() - DAY,
    groups: { hq: { relay: true }, store: { relay: false }, hub: { relay: false } },
    tables: {
      _tables: { write: { hq: '*' }, read: { '*': '*' } },
      catalog: { write: { hq: '*' }, read: { '*': '*' } },
      stock: { write: { hq: '*', store: 'own' }, read: { hq: '*', hub: '*', store: 'own' } },
      sales: { write: { store: 'own' }, read: { hq: '*', hub: '*', store: 'own' } },
    },
    otherTables: { write: { hq: '*' }, read: { hq: '*' } },
  }
}

export interface TestMesh {
  authority: PrivateKey
  id: string
  rules: Uint8Array
  admit(peer: string, group: string, partitions: string[], overrides?: Partial<Admission>): Promise<Uint8Array>
  revoke(peer: string, serial?: string): Promise<Uint8Array>
}

export async function testMesh(): Promise<TestMesh> {
  const authority = await generateKeyPair('Ed25519')
  const id = meshIdOf(authority.publicKey)
  const rules = encodeSigned(await signDocument(retailRules(id), authority))
  let serial = 0
  return {
    authority,
    id,
    rules,
    admit: async (peer, group, partitions, overrides = {}) => {
      const doc: Admission = { kind: 'admission', mesh: id, peer, group, partitions, issuedAt: Date.now() - 1000, expiresAt: Date.now() + 365 * DAY, serial: String(++serial), ...overrides }
      return encodeSigned(await signDocument(doc, authority))
    },
    revoke: async (peer, which = '*') => {
      const doc: Revocation = { kind: 'revocation', mesh: id, peer, serial: which, issuedAt: Date.now(), reason: 'test' }
      return encodeSigned(await signDocument(doc, authority))
    },
  }
}

export interface TestMember {
  key: PrivateKey
  id: string
  admission: Uint8Array
  membership: Membership
  gate: TrustGate
}

/** A member's key, admission and membership (knowing the rules and its own admission). */
export async function testMember(mesh: TestMesh, group: string, partitions: string[], key?: PrivateKey): Promise<TestMember> {
  const k = key ?? (await generateKeyPair('Ed25519'))
  const id = peerIdFromPrivateKey(k).toString()
  const admission = await mesh.admit(id, group, partitions)
  const membership = new Membership(mesh.id)
  await membership.add(mesh.rules)
  await membership.admit(id, admission)
  return { key: k, id, admission, membership, gate: new TrustGate(membership) }
}

/** A store signing as the member (no guard: a compromised member writes what it likes locally). */
export function openSigned(dir: string, mesh: TestMesh, m: TestMember, guard?: (table: string, partition: string) => void): Promise<Shoal> {
  return Shoal.open({
    dir,
    actor: m.id,
    signer: { mesh: mesh.id, author: m.id, sign: (c: Changeset) => signChangeset(c, m.key) },
    ...(guard === undefined ? {} : { guard }),
  })
}

/** A data folder whose peer key is admitted to `mesh`, and the material a Peer starts with. */
export async function memberFolder(mesh: TestMesh, dir: string, group: string, partitions: string[], overrides: Partial<Admission> = {}): Promise<{ id: string; key: PrivateKey; material: MeshMaterial; admission: Uint8Array }> {
  const key = await loadOrCreatePeerKey(dir)
  const id = peerIdFromPrivateKey(key).toString()
  const admission = await mesh.admit(id, group, partitions, overrides)
  return { id, key, admission, material: { mesh: mesh.id, swarmKey: TEST_SWARM_KEY, documents: [mesh.rules, admission] } }
}

/** A pre-shared key in the libp2p swarm key file format. */
export const TEST_SWARM_KEY = new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}\n`)

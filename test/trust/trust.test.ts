import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as A from '@automerge/automerge'
import { engineFor } from '../../src/table/engines.js'
import { RowDocument } from '../../src/table/row.js'
import { validateSchema } from '../../src/table/schema.js'
import { signChangeset, verifyChangeset, type Changeset } from '../../src/trust/changeset.js'
import { encodeSigned, meshIdOf, openSigned, signDocument, type Admission, type Rules } from '../../src/trust/documents.js'
import { Membership, mayRead, mayWrite } from '../../src/trust/membership.js'

const DAY = 24 * 3600 * 1000
const NOW = Date.parse('2026-11-30T00:00:00Z')

async function key(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}
const idOf = (k: PrivateKey): string => peerIdFromPrivateKey(k).toString()

function retailRules(mesh: string, version = 1): Rules {
  return {
    kind: 'rules',
    mesh,
    version,
    issuedAt: NOW,
    groups: { hq: { relay: true }, store: { relay: false } },
    tables: {
      _tables: { write: { hq: '*' }, read: { '*': '*' } },
      catalog: { write: { hq: '*' }, read: { '*': '*' } },
      stock: { write: { hq: '*', store: 'own' }, read: { hq: '*', store: 'own' } },
      sales: { write: { store: 'own' }, read: { hq: '*', store: 'own' } },
    },
    otherTables: { write: { hq: '*' }, read: { hq: '*' } },
  }
}

function admission(mesh: string, peer: string, group: string, partitions: string[], overrides: Partial<Admission> = {}): Admission {
  return { kind: 'admission', mesh, peer, group, partitions, issuedAt: NOW - DAY, expiresAt: NOW + 365 * DAY, serial: `${group}-${peer.slice(-6)}`, ...overrides }
}

async function mesh(): Promise<{ authority: PrivateKey; id: string; membership: Membership }> {
  const authority = await key()
  const id = meshIdOf(authority.publicKey)
  const membership = new Membership(id, () => NOW)
  await membership.add(encodeSigned(await signDocument(retailRules(id), authority)))
  return { authority, id, membership }
}

describe('mesh documents', () => {
  it('round-trip signed, and are refused when signed by another authority, altered, or of another mesh', async () => {
    const { authority, id } = await mesh()
    const store = await key()
    const signed = await signDocument(admission(id, idOf(store), 'store', ['1']), authority)
    const bytes = encodeSigned(signed)
    expect((await openSigned(bytes, id)).document).toEqual(signed.document)
    // another authority signs an admission naming this mesh
    const impostor = await key()
    const forged = encode([signed.payload, await impostor.sign(signed.payload)])
    await expect(openSigned(forged, id)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' })
    // a signed admission with its group changed
    const altered = encode([encode([1, 'admission', id, idOf(store), 'hq', ['1'], NOW - DAY, NOW + DAY, 'x']), signed.signature])
    await expect(openSigned(altered, id)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' })
    // signing for a mesh the key is not the authority of
    await expect(signDocument(admission(meshIdOf(impostor.publicKey), idOf(store), 'store', []), authority)).rejects.toMatchObject({ code: 'AUTHORITY_MISMATCH' })
    // a valid document of another mesh
    const other = await key()
    const theirs = encodeSigned(await signDocument(admission(meshIdOf(other.publicKey), idOf(store), 'store', []), other))
    await expect(openSigned(theirs, id)).rejects.toMatchObject({ code: 'WRONG_MESH' })
    await expect(openSigned(new Uint8Array([1, 2, 3]), id)).rejects.toMatchObject({ code: 'DOCUMENT_INVALID' })
  })

  it('rules not signed by the authority are refused, and an older version never replaces a newer', async () => {
    const { authority, id, membership } = await mesh()
    const impostor = await key()
    const payload = encode([1, 'rules', id, 9, NOW, {}, {}, { write: { '*': '*' }, read: { '*': '*' } }])
    await expect(membership.add(encode([payload, await impostor.sign(payload)]))).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' })
    expect(membership.rules?.version).toBe(1)
    expect((await membership.add(encodeSigned(await signDocument(retailRules(id, 3), authority)))).outcome).toBe('new')
    expect((await membership.add(encodeSigned(await signDocument(retailRules(id, 2), authority)))).outcome).toBe('older')
    expect(membership.rules?.version).toBe(3)
  })
})

describe('membership', () => {
  it('admits a peer presenting its own valid admission, and says what its group may write and read', async () => {
    const { authority, id, membership } = await mesh()
    const store = idOf(await key())
    const hq = idOf(await key())
    const m = await membership.admit(store, encodeSigned(await signDocument(admission(id, store, 'store', ['1']), authority)))
    expect(m).toMatchObject({ group: 'store', partitions: ['1'], relay: false })
    await membership.admit(hq, encodeSigned(await signDocument(admission(id, hq, 'hq', []), authority)))
    expect(membership.member(hq)?.relay).toBe(true)
    const rules = membership.rules!
    expect(mayWrite(rules, m, 'stock', '1')).toBe(true)
    expect(mayWrite(rules, m, 'stock', '2')).toBe(false)
    expect(mayWrite(rules, m, 'catalog', '')).toBe(false)
    expect(mayWrite(rules, m, '_tables', '')).toBe(false)
    expect(mayRead(rules, m, 'catalog', '')).toBe(true)
    expect(mayRead(rules, m, 'sales', '2')).toBe(false)
    expect(membership.mayWrite(hq, 'catalog', '')).toBe(true)
    expect(membership.mayWrite(hq, 'sales', '1')).toBe(false)
    expect(membership.mayWrite(hq, 'unlisted', 'x')).toBe(true)
    expect(membership.mayRead(store, 'unlisted', 'x')).toBe(false)
  })

  it('refuses unknown, foreign, expired, not-yet-valid, revoked and replayed old admissions', async () => {
    const { authority, id, membership } = await mesh()
    const store = idOf(await key())
    const other = idOf(await key())
    await expect(membership.admit(store, encodeSigned(await signDocument(admission(id, other, 'store', ['1']), authority)))).rejects.toMatchObject({ code: 'NOT_ADMITTED' })
    await expect(membership.admit(store, encodeSigned(await signDocument(admission(id, store, 'store', ['1'], { expiresAt: NOW - 1 }), authority)))).rejects.toMatchObject({ code: 'ADMISSION_EXPIRED' })
    await expect(membership.admit(store, encodeSigned(await signDocument(admission(id, store, 'store', ['1'], { issuedAt: NOW + 3600_000 }), authority)))).rejects.toMatchObject({ code: 'ADMISSION_NOT_YET_VALID' })
    expect(membership.member(store)).toBeNull()
    // admitted as hq once, then re-admitted (demoted) as a store: the old admission cannot be replayed
    const old = encodeSigned(await signDocument(admission(id, store, 'hq', [], { issuedAt: NOW - 10 * DAY, serial: 'old' }), authority))
    await membership.admit(store, old)
    await membership.admit(store, encodeSigned(await signDocument(admission(id, store, 'store', ['1'], { serial: 'new' }), authority)))
    await expect(membership.admit(store, old)).rejects.toMatchObject({ code: 'ADMISSION_SUPERSEDED' })
    expect(membership.member(store)?.group).toBe('store')
    // revoking the old serial keeps the new one; revoking '*' ends the membership
    await membership.add(encodeSigned(await signDocument({ kind: 'revocation', mesh: id, peer: store, serial: 'old', issuedAt: NOW, reason: 'demoted' }, authority)))
    expect(membership.member(store)?.group).toBe('store')
    let changed = 0
    membership.onChange = () => changed++
    await membership.add(encodeSigned(await signDocument({ kind: 'revocation', mesh: id, peer: store, serial: '*', issuedAt: NOW, reason: 'till stolen' }, authority)))
    expect(changed).toBe(1)
    expect(membership.member(store)).toBeNull()
    expect(() => membership.requireMember(store)).toThrow(/revoked \(till stolen/)
    expect(membership.lapsed([store, other])).toEqual([store])
    expect(membership.summary()).toEqual({ rulesVersion: 1, revocations: 2 })
  })

  it('shares its rules and revocations so another peer enforces the same', async () => {
    const { authority, id, membership } = await mesh()
    const store = idOf(await key())
    await membership.add(encodeSigned(await signDocument({ kind: 'revocation', mesh: id, peer: store, serial: '*', issuedAt: NOW, reason: 'x' }, authority)))
    const other = new Membership(id, () => NOW)
    for (const doc of membership.shared()) await other.add(doc)
    expect(other.summary()).toEqual(membership.summary())
    for (const doc of membership.shared()) expect((await other.add(doc)).outcome).toBe('known')
  })
})

describe('changesets', () => {
  const stock = validateSchema({ name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', qty: 'counter', note: 'text' } })
  const sales = validateSchema({ name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: 'automerge', columns: { id: 'string', store: 'string', qty: 'counter', note: 'text' } })

  it('verify with their author’s key and refuse a changeset claiming another author', async () => {
    const { id } = await mesh()
    const author = await key()
    const cs: Changeset = { mesh: id, author: idOf(author), table: 'stock', partition: '1', seq: 1, rows: [{ key: 'a', delta: new Uint8Array([1, 2]) }] }
    const signed = await signChangeset(cs, author)
    expect(await verifyChangeset(signed.bytes, id)).toEqual(cs)
    const thief = await key()
    const claimed = await signChangeset({ ...cs, author: idOf(author) }, thief)
    await expect(verifyChangeset(claimed.bytes, id)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' })
    await expect(verifyChangeset(signed.bytes, meshIdOf((await key()).publicKey))).rejects.toMatchObject({ code: 'WRONG_MESH' })
    await expect(verifyChangeset(encode([new Uint8Array([1]), new Uint8Array(64)]), id)).rejects.toMatchObject({ code: 'CHANGESET_INVALID' })
  })

  it.each([['yjs', stock], ['automerge', sales]] as const)('%s deltas pass the author check only with their author’s own operations', async (_engine, schema) => {
    const engine = engineFor(schema.engine)
    const alice = idOf(await key())
    const bob = idOf(await key())
    const doc = RowDocument.create(engine, { actor: alice, nowSeconds: () => 0 }, schema.name, 'k')
    const first = doc.apply({ op: 'put', values: { id: 'k', store: '1', qty: 3, note: 'hi' } }, schema)!
    expect(() => engine.checkAuthor(first, alice)).not.toThrow()
    expect(() => engine.checkAuthor(first, bob)).toThrow(/not of its author/)
    // bob edits alice's row, deleting her text: his delta is his alone
    const bobs = RowDocument.decode(engine, doc.encode(), { actor: bob, nowSeconds: () => 0 }, schema.name, 'k')
    const edit = bobs.apply({ op: 'editText', column: 'note', index: 0, delete: 2, insert: 'yo' }, schema)!
    expect(() => engine.checkAuthor(edit, bob)).not.toThrow()
    expect(() => engine.checkAuthor(edit, alice)).toThrow(/not of its author/)
    // a merged document carries both authors
    bobs.applyDelta(first)
    if (schema.engine === 'yjs') expect(() => engine.checkAuthor(bobs.encode(), bob)).toThrow(/not of its author/)
    else expect(() => engine.checkAuthor(bobs.encode(), bob)).toThrow(/not a whole document/)
    doc.dispose()
    bobs.dispose()
  })

  it('columns deltas pass the author check only with their author’s own cells', async () => {
    const schema = validateSchema({ name: 'stock', primaryKey: 'id', partitionBy: 'store', engine: 'columns', columns: { id: 'string', store: 'string', qty: 'counter', note: 'string' } })
    const engine = engineFor('columns')
    const alice = idOf(await key())
    const bob = idOf(await key())
    const doc = RowDocument.create(engine, { actor: alice }, 'stock', 'k')
    const first = doc.apply({ op: 'put', values: { id: 'k', store: '1', qty: 3, note: 'hi' } }, schema)!
    expect(() => engine.checkAuthor(first, alice)).not.toThrow()
    expect(() => engine.checkAuthor(first, bob)).toThrow(/in the name of|not only of its author/)
    // bob overwrites alice's note and deletes the row: his deltas are his alone
    const bobs = RowDocument.decode(engine, doc.encode(), { actor: bob }, 'stock', 'k')
    const write = bobs.apply({ op: 'update', values: { note: 'yo' } }, schema)!
    expect(() => engine.checkAuthor(write, bob)).not.toThrow()
    expect(() => engine.checkAuthor(write, alice)).toThrow(/in the name of|not only of its author/)
    const del = bobs.apply({ op: 'delete' }, schema)!
    expect(() => engine.checkAuthor(del, bob)).not.toThrow()
    // the whole row carries both authors
    expect(() => engine.checkAuthor(bobs.encode(), bob)).toThrow(/in the name of|not only of its author/)
  })

  it('a Yjs delta forging another client’s structs is caught', async () => {
    const alice = idOf(await key())
    const forged = new Y.Doc()
    forged.clientID = 12345
    forged.getMap('r').set('1:qty', 1)
    expect(() => engineFor('yjs').checkAuthor(Y.encodeStateAsUpdate(forged), alice)).toThrow(/client 12345/)
    const am = A.change(A.init<Record<string, unknown>>({ actor: 'ab'.repeat(16) }), (d) => {
      d.x = 1
    })
    expect(() => engineFor('automerge').checkAuthor(A.getLastLocalChange(am)!, alice)).toThrow(/actor abab/)
  })
})

import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { yjsClientId } from '../../src/table/yjs-engine.js'
import { hex, load, replica, stockSchema } from '../helpers/table.js'

/*
 * Yjs keeps a peer's update whose dependencies have not arrived pending, and retries it only on
 * some later updates: a local write does not retry it, a load of the saved document does. The
 * engine keeps the document its own encoding loads, so the stored bytes, the digest and the row
 * read back after a restart are one state (found by the fuzzer as "stored digest does not match
 * its document").
 */

const schema = stockSchema('yjs')

/** An update by client 999 overwriting register '1:name' that `author` wrote first (origin author:0). */
function overwriteOf(author: string): Uint8Array {
  const first = new Y.Doc()
  first.clientID = yjsClientId(author)
  first.getMap('r').set('1:name', 'first')
  const other = new Y.Doc()
  Y.applyUpdate(other, Y.encodeStateAsUpdate(first))
  other.clientID = 999
  other.getMap('r').set('1:name', 'overwritten')
  return Y.encodeStateAsUpdate(other, Y.encodeStateVector(first))
}

function expectLoadsAsItIs(row: ReturnType<typeof replica>): void {
  const again = load('yjs', 'peer-a', row.encode())
  expect(hex(again.digest())).toBe(hex(row.digest()))
  expect(again.state(schema)).toEqual(row.state(schema))
}

describe('a Yjs row holding pending work', () => {
  it('is the row its bytes load, after a local write makes the pending update applicable', () => {
    const row = replica('yjs', 'peer-a')
    // It depends on peer-a's first item, which does not exist yet: pending.
    expect(row.applyDelta(overwriteOf('peer-a'))).toBe('pending')
    expectLoadsAsItIs(row)
    // peer-a's own first write creates that item.
    row.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'mine' } }, schema)
    expectLoadsAsItIs(row)
    // What it integrated overwrote peer-a's causal length entry (a hostile peer's doing: the row
    // reads as never created); a put starts the row again.
    row.apply({ op: 'put', values: { sku: 'A1', store: '7', price: 3 } }, schema)
    expectLoadsAsItIs(row)
  })

  it('is the row its bytes load when deltas arrive in any order', () => {
    const a = replica('yjs', 'peer-a')
    const b = replica('yjs', 'peer-b')
    const deltas: Uint8Array[] = []
    deltas.push(a.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'one' } }, schema)!)
    b.applyDelta(deltas[0]!)
    deltas.push(b.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'two', price: 2 } }, schema)!)
    a.applyDelta(deltas[1]!)
    deltas.push(a.apply({ op: 'increment', column: 'qty', by: 3 }, schema)!)
    deltas.push(a.apply({ op: 'delete' }, schema)!)
    for (const order of [
      [3, 2, 1, 0],
      [1, 3, 0, 2],
      [2, 0, 3, 1],
    ]) {
      const row = replica('yjs', 'peer-c')
      for (const i of order) {
        row.applyDelta(deltas[i]!)
        expectLoadsAsItIs(row)
        row.apply({ op: 'put', values: { sku: 'A1', store: '7', active: true } }, schema)
        expectLoadsAsItIs(row)
      }
    }
  })

  it('keeps writing under its own client id after a peer sent items in its name', () => {
    const row = replica('yjs', 'peer-a')
    const own = yjsClientId('peer-a')
    const forger = new Y.Doc()
    forger.clientID = own
    forger.getMap('r').set('1:note', 'in your name')
    expect(row.applyDelta(Y.encodeStateAsUpdate(forger))).toBe('changed')
    const delta = row.apply({ op: 'put', values: { sku: 'A1', store: '7' } }, schema)!
    expect([...Y.parseUpdateMeta(delta).from.keys()]).toEqual([own])
    expectLoadsAsItIs(row)
  })
})

import { describe, expect, it } from 'vitest'
import { RowCache } from '../../src/store/row-cache.js'

class Doc {
  disposed = 0
  constructor(
    readonly name: string,
    readonly weight = 1,
  ) {}
  dispose(): void {
    this.disposed++
  }
}

describe('row cache', () => {
  it('evicts the least recently used and disposes what it evicts, once', () => {
    const cache = new RowCache<Doc>(3)
    const docs = ['a', 'b', 'c', 'd'].map((n) => new Doc(n))
    cache.set('a', docs[0]!)
    cache.set('b', docs[1]!)
    cache.set('c', docs[2]!)
    expect(cache.get('a')).toBe(docs[0])
    cache.set('d', docs[3]!)
    expect(cache.get('b')).toBeUndefined()
    expect(docs[1]!.disposed).toBe(1)
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([docs[0], docs[2], docs[3]])
    cache.clear()
    expect(docs.map((d) => d.disposed)).toEqual([1, 1, 1, 1])
  })

  it('counts weights, keeps pinned documents alive until unpinned, and replaces in place', () => {
    const cache = new RowCache<Doc>(10)
    const heavy = new Doc('heavy', 8)
    const light = new Doc('light')
    cache.set('h', heavy)
    cache.pin(heavy)
    cache.set('l', light)
    cache.set('l2', new Doc('light2'))
    cache.set('l3', new Doc('light3'))
    expect(cache.load).toBe(3)
    expect(cache.get('h')).toBeUndefined()
    expect(heavy.disposed).toBe(0)
    cache.unpin(heavy)
    expect(heavy.disposed).toBe(1)
    const again = new Doc('light-again')
    cache.set('l', again)
    expect(light.disposed).toBe(1)
    expect(cache.get('l')).toBe(again)
    cache.set('l', again)
    expect(again.disposed).toBe(0)
    expect(cache.size).toBe(3)
  })
})

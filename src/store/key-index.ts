import { indexKey } from './layout.js'

/** Key → partition answers remembered before the memo starts over. */
const PARTITION_MEMO_SIZE = 100_000

/** What the index reads of its sublevel (`keys`: table␀key → partition). */
export interface KeysLevel {
  get(key: string): Promise<string | undefined>
  getMany(keys: string[]): Promise<Array<string | undefined>>
}

/**
 * Where each key of a partitioned table lives (`keys` sublevel: table␀key → partition). A key's
 * partition is fixed when its row is first stored here, so answers are remembered without
 * invalidation.
 */
export class KeyIndex {
  private readonly memo = new Map<string, string>()

  constructor(private readonly keys: KeysLevel) {}

  /** The partition holding `key`, or null if no row of it is stored here. */
  async find(table: string, key: string): Promise<string | null> {
    const k = indexKey(table, key)
    const known = this.memo.get(k)
    if (known !== undefined) return known
    const found = (await this.keys.get(k)) ?? null
    if (found !== null) this.remember(k, found)
    return found
  }

  /** Known answers for index keys (table␀key), reading the unknown ones in one getMany. */
  async findMany(indexKeys: Iterable<string>): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>()
    const unknown: string[] = []
    for (const k of indexKeys) {
      const known = this.memo.get(k)
      if (known !== undefined) out.set(k, known)
      else unknown.push(k)
    }
    if (unknown.length > 0) {
      const found = await this.keys.getMany(unknown)
      unknown.forEach((k, i) => {
        const p = found[i] ?? null
        out.set(k, p)
        if (p !== null) this.remember(k, p)
      })
    }
    return out
  }

  remember(indexKey: string, partition: string): void {
    if (this.memo.size >= PARTITION_MEMO_SIZE) this.memo.clear()
    this.memo.set(indexKey, partition)
  }
}

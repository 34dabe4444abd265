import type { Level } from 'level'
import { StoreCorruptError } from '../errors.js'
import type { Logger } from '../log.js'
import type { EngineContext } from '../table/engine.js'
import { engineFor } from '../table/engines.js'
import { parseRowId } from '../table/ids.js'
import { RowDocument } from '../table/row.js'
import type { ResolvedSchema } from '../table/schema.js'
import type { Changeset, SignedChangeset } from '../trust/changeset.js'
import type { Catalog } from './catalog.js'
import type { ChangeFeed } from './change-feed.js'
import type { ChangeLog } from './change-log.js'
import type { DigestState } from './digest-state.js'
import type { KeyIndex } from './key-index.js'
import { decodeRecord } from './layout.js'
import { LiveRow } from './live-row.js'
import type { RowCache } from './row-cache.js'

function sublevels(db: Level<string, Uint8Array>) {
  const bytes = (name: string) => db.sublevel<string, Uint8Array>(name, { keyEncoding: 'utf8', valueEncoding: 'view' })
  const text = (name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  return { rows: bytes('rows'), buckets: bytes('buckets'), leaves: bytes('leaves'), keys: text('keys'), meta: text('meta'), changes: bytes('changes'), feed: bytes('feed') }
}

export type Sublevels = ReturnType<typeof sublevels>

/** What signs this peer's changesets in a private mesh (docs/trust.md); absent in an open mesh. */
export interface ChangeSigner {
  mesh: string
  /** This peer's id: the author of its changesets. */
  author: string
  sign(changeset: Changeset): Promise<SignedChangeset>
}

/** Called for every local write with its (table, partition) before it is applied; throws (ForbiddenError) to refuse it. */
export type LocalWriteGuard = (table: string, partition: string) => void

export interface StoreCoreInit {
  db: Level<string, Uint8Array>
  dir: string
  actor: string
  context: EngineContext
  cache: RowCache<LiveRow>
  digests: DigestState
  keyIndex: KeyIndex
  catalog: Catalog
  log: Logger
  syncWrites: boolean
  maxPartitionsPerTable: number
  changeLog: ChangeLog
  feed: ChangeFeed
  signer: ChangeSigner | null
  guard: LocalWriteGuard | null
}

/**
 * What the parts of the store share: the database and its sublevels, the live-row cache, the
 * digest state, the key index, the catalog, and the bookkeeping that keeps reads off rows a batch
 * is writing. One per open store; the modules of this folder take it instead of each other.
 */
export class StoreCore {
  readonly levels: Sublevels
  /** Each sublevel's key prefix in the root database (commits write one array batch on the root). */
  readonly prefix: Readonly<Record<keyof Sublevels, string>>
  /** Row ids being written by the batch in flight; reads of them wait for its commit. */
  readonly inFlight = new Set<string>()
  /** The batch being written now. */
  flushing: Promise<void> | null = null
  /** Bumped at every commit, so a read that raced a commit does not cache what it read. */
  commitSeq = 0

  readonly db: Level<string, Uint8Array>
  readonly dir: string
  readonly actor: string
  readonly context: EngineContext
  readonly cache: RowCache<LiveRow>
  readonly digests: DigestState
  readonly keyIndex: KeyIndex
  readonly catalog: Catalog
  readonly log: Logger
  readonly syncWrites: boolean
  readonly maxPartitionsPerTable: number
  /** The changeset log's index (private meshes). */
  readonly changeLog: ChangeLog
  /** Which rows changed here since a position (anti-entropy by versions). */
  readonly feed: ChangeFeed
  readonly signer: ChangeSigner | null
  readonly guard: LocalWriteGuard | null

  constructor(init: StoreCoreInit) {
    this.db = init.db
    this.dir = init.dir
    this.actor = init.actor
    this.context = init.context
    this.cache = init.cache
    this.digests = init.digests
    this.keyIndex = init.keyIndex
    this.catalog = init.catalog
    this.log = init.log
    this.syncWrites = init.syncWrites
    this.maxPartitionsPerTable = init.maxPartitionsPerTable
    this.changeLog = init.changeLog
    this.feed = init.feed
    this.signer = init.signer
    this.guard = init.guard
    const db = init.db
    this.levels = sublevels(db)
    this.prefix = {
      rows: this.levels.rows.prefix,
      buckets: this.levels.buckets.prefix,
      leaves: this.levels.leaves.prefix,
      keys: this.levels.keys.prefix,
      meta: this.levels.meta.prefix,
      changes: this.levels.changes.prefix,
      feed: this.levels.feed.prefix,
    }
  }

  static sublevels = sublevels

  /** Waits until the batch in flight (if it writes row `id`) is committed. */
  async settled(id: string): Promise<void> {
    while (this.inFlight.has(id) && this.flushing !== null) await this.flushing
  }

  decodeLive(schema: ResolvedSchema, key: string, id: string, bytes: Uint8Array): LiveRow {
    const record = decodeRecord(bytes, id)
    const doc = this.decodeDoc(schema, key, id, record.doc)
    return new LiveRow(doc, record.rowHash.slice(), record.alive, bytes.length, schema.engine)
  }

  decodeDoc(schema: ResolvedSchema, key: string, id: string, bytes: Uint8Array): RowDocument {
    try {
      return RowDocument.decode(engineFor(schema.engine), bytes, this.context, schema.name, key)
    } catch (error) {
      throw new StoreCorruptError(
        `stored row '${key}' of table '${schema.name}' (partition '${parseRowId(id).partition}') cannot be decoded as a ${schema.engine} document; ` +
          `run \`shoal check\` and restore the data folder from a backup or a peer`,
        { cause: error },
      )
    }
  }

  newLive(schema: ResolvedSchema, key: string): LiveRow {
    return new LiveRow(RowDocument.create(engineFor(schema.engine), this.context, schema.name, key), null, false, 0, schema.engine)
  }
}

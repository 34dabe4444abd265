/** Names of tables and columns: an identifier, so they fit in URLs, topics and config files. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,62}$/

/** Row keys and partition values are UTF-8 strings of this many bytes at most (no NUL). */
export const MAX_KEY_BYTES = 512

/** One register value, JSON-encoded, may be at most this large. */
export const MAX_VALUE_BYTES = 256 * 1024

/** A whole row document, encoded, may be at most this large: rows travel in one frame. */
export const MAX_ROW_BYTES = 1024 * 1024

/** A remote delta larger than this is refused before it is decoded. */
export const MAX_DELTA_BYTES = 1024 * 1024

/** Columns a table may have, so a schema stays readable and a row stays small. */
export const MAX_COLUMNS = 256

/**
 * Digest tree shape: 16^4 = 65,536 leaf buckets per (table, partition). With 100k rows that is
 * ~1.5 rows a bucket, so anti-entropy that descends to differing leaves exchanges little more
 * than the rows that differ. Levels: 0 = root (1 node) … 4 = leaves (65,536 nodes).
 */
export const DIGEST_TREE_FANOUT_BITS = 4
export const DIGEST_TREE_DEPTH = 4
export const DIGEST_BYTES = 16

/** Live row documents kept in memory (in Yjs-row units); the rest stay encoded in LevelDB. */
export const DEFAULT_ROW_CACHE_SIZE = 10_000

/**
 * A live Automerge row counts as this many cache units: it holds ~17 KB (mostly WASM heap)
 * against ~5 KB for Yjs, and a growing WASM heap forces full GCs, so fewer are kept live.
 */
export const AUTOMERGE_CACHE_WEIGHT = 10

/** Digest trees (≈1.1 MB each) kept in memory; others are reloaded from their stored leaves. */
export const DEFAULT_TREE_CACHE_SIZE = 64

/**
 * Digest leaf values remembered as the last commit wrote them, so a commit to a recently written
 * leaf reads nothing from LevelDB first (~0.15 ms of a thread-pool round trip a commit). ~100 B each.
 */
export const LEAF_MEMO_SIZE = 16_384

/** Most writes coalesced into one LevelDB batch (group commit). */
export const MAX_WRITES_PER_BATCH = 4096

/**
 * Mode of a data folder Shoal creates: owner only. It holds every row, the peer's private key and
 * the HTTP API's token; a folder that already exists keeps the mode its owner gave it.
 */
export const DATA_DIR_MODE = 0o700

/**
 * Tables a store holds (user tables; the catalog is extra). A table costs a catalog row, a gossip
 * topic per partition and status lines; a peer may define tables remotely, so their number is
 * bounded: a definition past the limit is refused, locally or from a peer.
 */
export const MAX_TABLES = 1024

/**
 * Highest causal length a row may reach (see table/row.ts): 2^32 lives is more deletes and
 * re-inserts than any row sees, and the bound keeps lives exact integers, so a peer cannot push a
 * row to a life no later write can move past (1e300 + 1 === 1e300 in floating point).
 */
export const MAX_CAUSAL_LENGTH = 2 ** 32

/**
 * What a row document may expand to, whatever its encoded size: Automerge documents deflate their
 * columns and run-length encode operations, so a few KB can hold millions of operations (1,176
 * bytes → a million-character text, 1.5 s to load). An Automerge row or delta is measured before
 * it is loaded (table/automerge-chunks.ts) and refused past these. Yjs updates carry their values
 * uncompressed, so for Yjs rows MAX_ROW_BYTES already bounds the decoded size.
 */
export const MAX_ROW_OPS = 500_000
export const MAX_ROW_VALUE_BYTES = 4 * 1024 * 1024

/** Partitions one table may have on a peer: each costs a digest tree, a gossip topic and status lines. */
export const MAX_PARTITIONS_PER_TABLE = 65_536

/**
 * Keys a partition's change feed lists at most (store/change-feed.ts): as many as the partition
 * has rows, within these bounds (~16 B each on disk). A peer that fell further behind reconciles
 * by the digest tree, which is cheaper than a feed exchange once more than an eighth of the rows
 * changed anyway.
 */
export const FEED_MIN_KEYS = 1_024
export const FEED_MAX_KEYS = 16_384
/** Peers whose feed marks are kept in memory (the rest are read back from disk when they return). */
export const FEED_MARKED_PEERS = 256
/**
 * Peers whose feed marks are kept on disk: the least recently marked beyond these lose theirs
 * (they reconcile by the digest tree until marked again), so peer ids that come and go (a peer id
 * costs nothing to make) cannot grow the store without bound.
 */
export const FEED_MARKS_KEPT_PEERS = 1_024

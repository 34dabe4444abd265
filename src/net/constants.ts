/** File names inside a peer's data folder (beside the LevelDB files, which ignore foreign names). */
export const PEER_KEY_FILE = 'peer.key'
export const PEER_BOOK_FILE = 'peers.json'

/** The private key file is readable and writable by its owner only. */
export const PEER_KEY_MODE = 0o600

/**
 * mDNS service tag: Shoal peers answer only Shoal queries, so a LAN full of other libp2p nodes
 * (IPFS…) is not dialled.
 */
export const MDNS_SERVICE_TAG = '_shoal-mesh._udp.local'

/**
 * Gossipsub topic on which peers announce themselves (net/mesh-discovery.ts), so peers learn of
 * the peers their neighbours know. A Shoal-only topic: not the global libp2p one.
 */
export const DISCOVERY_TOPIC = 'shoal/1/_peers'

/**
 * How often a peer re-announces itself on DISCOVERY_TOPIC. Peers that connect learn of each other
 * at once (identify); announcements only introduce peers two hops away, so once a minute is
 * enough, and an idle mesh stays quiet.
 */
export const DEFAULT_DISCOVERY_INTERVAL_MS = 60_000

/** Addresses taken from one announcement (a peer listens on a few; more is not a real peer). */
export const MAX_ANNOUNCED_ADDRS = 8
export const MAX_ANNOUNCED_ADDR_BYTES = 256

/**
 * A peer heard of (discovery) but never connected is tried this many times with backoff, then
 * forgotten: only peers this peer has met are redialled until DEFAULT_FORGET_AFTER_MS.
 */
export const MAX_UNMET_REDIALS = 4

/**
 * Two browser tabs that hear of each other at once would each dial the other, and keep two WebRTC
 * connections. Between two peers reachable only over WebRTC, the one with the greater peer id
 * waits this long before dialling: the other has normally connected by then.
 */
export const WEBRTC_DIAL_YIELD_MS = 5_000

/** Peer-store tag on peers of the mesh: a high value so the connection manager prunes them last. */
export const MESH_PEER_TAG = 'shoal-mesh'
export const MESH_PEER_TAG_VALUE = 100

/** Redial backoff for known peers: first retry after about this long… */
export const DEFAULT_REDIAL_MIN_DELAY_MS = 1_000
/** …doubling up to this ceiling (each delay jittered to 50–100 % of its nominal value)… */
export const DEFAULT_REDIAL_MAX_DELAY_MS = 60_000
/** …and a peer not connected for this long is forgotten (dropped from redial and peers.json). */
export const DEFAULT_FORGET_AFTER_MS = 7 * 24 * 60 * 60 * 1000
/** At most this many peers are kept for redial and in peers.json (the most recently seen). */
export const MAX_KNOWN_PEERS = 256

/** peers.json is rewritten at most this often while connections come and go. */
export const PEER_BOOK_SAVE_DELAY_MS = 2_000

/**
 * Gossip limits the node enforces for the replication layer above it, which net/ does not import:
 * MAX_GOSSIP_TOPICS mirrors peer/gossip-replicator.ts MAX_TOPICS (a test keeps them equal, plus
 * the discovery and announcement topics), MAX_GOSSIP_MESSAGE_BYTES sync/gossip.ts MAX_GOSSIP_BYTES
 * plus gossipsub's own framing.
 */
export const MAX_GOSSIP_TOPICS = 4096 + 16
export const MAX_GOSSIP_MESSAGE_BYTES = 512 * 1024 + 4096
/** Gossipsub's accounting per subscribed topic: the topic string plus ~1 KiB of bookkeeping. */
export const GOSSIPSUB_BYTES_PER_TOPIC = 1100

/**
 * How often each connection is probed for a far end gone silent (net/liveness.ts; libp2p's own
 * monitor: 10 s). Both sides probe, so a dead peer is found within about this plus the timeout.
 */
export const LIVENESS_INTERVAL_MS = 30_000
/** The shortest wait for a probe's answer; libp2p's adaptive timeout lengthens it on links seen to be slow. */
export const LIVENESS_MIN_TIMEOUT_MS = 5_000

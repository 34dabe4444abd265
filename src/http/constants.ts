/*
 * Limits of the local HTTP API. It listens on loopback by default, but every web page the user
 * opens can reach loopback too, so the limits assume hostile clients: a page or a local program
 * holding connections open (slow-loris), headers that never end, bodies that trickle in.
 */

/** Random bytes in a new API token: 256 bits, sent base64url-encoded (43 characters). */
export const API_TOKEN_BYTES = 32

/** The shortest token startHttpApi accepts: 22 base64url characters carry 128 bits. */
export const MIN_API_TOKEN_CHARS = 22

export interface HttpLimits {
  /**
   * A client must send its complete request headers within this time of connecting (or of its
   * previous request on a kept-alive connection); then it gets 408 and is disconnected. A client
   * on this machine sends them in microseconds: the bound is for ones that never finish.
   */
  headersTimeoutMs: number
  /** The whole request, body included (at most MAX_BODY_BYTES), must arrive within this time. Node requires ≥ headersTimeoutMs. */
  requestTimeoutMs: number
  /** An idle kept-alive connection is closed after this long. */
  keepAliveTimeoutMs: number
  /** How often the two timeouts above are checked (Node's default, 30 s, would let a stalled client stay that much longer). */
  timeoutCheckIntervalMs: number
  /** Open connections at most; more are closed as soon as they connect. The CLI uses one at a time. */
  maxConnections: number
  /** Request line and headers, in bytes (Node's default, set explicitly); more answers 431. */
  maxHeaderBytes: number
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  timeoutCheckIntervalMs: 1_000,
  maxConnections: 64,
  maxHeaderBytes: 16 * 1024,
}

/** Seconds a browser may cache the answer to a CORS preflight from an allowed origin. */
export const CORS_MAX_AGE_SECONDS = 600

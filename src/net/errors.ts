import { ShoalError } from '../errors.js'

/** The peer's private key file exists but cannot be read or is not a libp2p private key. */
export class PeerKeyError extends ShoalError {
  constructor(readonly file: string, problem: string, options?: { cause?: unknown }) {
    super(
      'PEER_KEY_INVALID',
      `peer key file '${file}' ${problem}; restore it from a backup, or delete it to give this peer ` +
        `a new identity (its peer id changes, so other peers' bootstrap lists and allow-lists must be updated)`,
      options,
    )
  }
}

/** The libp2p node could not be configured or started (bad multiaddr, port in use…). */
export class NetStartError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NET_START_FAILED', message, options)
  }
}

/** A connection's far end stopped answering liveness probes; it was closed, and the peer is redialled. */
export class DeadConnectionError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONNECTION_DEAD', message, options)
  }
}

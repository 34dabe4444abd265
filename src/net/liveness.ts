import type { ComponentLogger, Connection, Logger, Startable } from '@libp2p/interface'
import { AdaptiveTimeout, byteStream } from '@libp2p/utils'
import { LIVENESS_INTERVAL_MS, LIVENESS_MIN_TIMEOUT_MS } from './constants.js'
import { DeadConnectionError } from './errors.js'

/*
 * Finds connections whose far end has gone silently (a power cut, a dropped Wi-Fi link: no FIN
 * ever comes, and TCP alone would give up after ~15 minutes) and aborts them, so the mesh keeper
 * redials, and gossip and anti-entropy stop writing into a connection nobody reads.
 *
 * libp2p's own connection monitor does this by opening a ping stream every interval: stream
 * negotiation, yamux window frames and Noise framing come to ~450 B a ping, both sides ping, and
 * for two idle peers that was ~1.8 KB a minute, half of everything they sent. A yamux connection
 * can be probed with the muxer's own ping frame instead (12 bytes, ~30 B once encrypted, the same
 * back), which is what this does; connections with another muxer (WebRTC's data channels) are
 * probed as libp2p's monitor would. yamux's built-in keepalive is turned off (shoal-node.ts): it
 * pings too, but never gives up on a connection that stops answering.
 */

export interface LivenessInit {
  /** Between probes of a connection (default LIVENESS_INTERVAL_MS). */
  intervalMs?: number
  /** The shortest wait for an answer; longer on links seen to be slow (default LIVENESS_MIN_TIMEOUT_MS). */
  minTimeoutMs?: number
}

interface LivenessComponents {
  connectionManager: { getConnections(): Connection[] }
  logger: ComponentLogger
}

/** The stream muxer's ping, where it has one (yamux): not part of libp2p's Connection interface. */
interface PingingMuxer {
  ping(options?: { signal?: AbortSignal }): Promise<number>
}

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_BYTES = 32

export class Liveness implements Startable {
  private readonly log: Logger
  private readonly intervalMs: number
  private readonly timeout: AdaptiveTimeout
  private readonly probing = new WeakSet<Connection>()
  private controller: AbortController | undefined
  private timer: ReturnType<typeof setInterval> | undefined
  /** Probes sent, by kind, and connections aborted since start (what tests look at). */
  readonly counts = { muxerPings: 0, streamPings: 0, aborted: 0 }

  constructor(
    private readonly components: LivenessComponents,
    init: LivenessInit = {},
  ) {
    this.log = components.logger.forComponent('shoal:net:liveness')
    this.intervalMs = init.intervalMs ?? LIVENESS_INTERVAL_MS
    this.timeout = new AdaptiveTimeout({ minTimeout: init.minTimeoutMs ?? LIVENESS_MIN_TIMEOUT_MS })
  }

  readonly [Symbol.toStringTag] = 'shoal:liveness'

  start(): void {
    this.controller = new AbortController()
    this.timer = setInterval(() => this.probeAll(), this.intervalMs)
  }

  stop(): void {
    clearInterval(this.timer)
    this.controller?.abort()
  }

  private probeAll(): void {
    for (const connection of this.components.connectionManager.getConnections()) {
      // A probe still waiting (a slow link) is not doubled; its own timeout decides.
      if (connection.status !== 'open' || this.probing.has(connection)) continue
      this.probing.add(connection)
      void this.probe(connection)
        .catch((error: unknown) => {
          if (this.controller?.signal.aborted === true || connection.status !== 'open') return
          this.counts.aborted++
          this.log('no answer from %p on %a, aborting the connection: %e', connection.remotePeer, connection.remoteAddr, error)
          connection.abort(new DeadConnectionError(`peer ${connection.remotePeer.toString()} did not answer a liveness probe on ${connection.remoteAddr.toString()}; the connection is presumed dead and was closed`, { cause: error }))
        })
        .finally(() => this.probing.delete(connection))
    }
  }

  private async probe(connection: Connection): Promise<void> {
    const signal = this.timeout.getTimeoutSignal({ signal: this.controller?.signal })
    try {
      const muxer = (connection as unknown as { muxer?: Partial<PingingMuxer> }).muxer
      if (typeof muxer?.ping === 'function') {
        this.counts.muxerPings++
        connection.rtt = await muxer.ping({ signal })
        return
      }
      this.counts.streamPings++
      await this.pingStream(connection, signal)
    } finally {
      this.timeout.cleanUp(signal)
    }
  }

  /** libp2p's ping protocol on a stream of its own, for connections whose muxer cannot ping. */
  private async pingStream(connection: Connection, signal: AbortSignal): Promise<void> {
    const start = Date.now()
    const stream = await connection.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
    try {
      const bytes = byteStream(stream)
      const sent = crypto.getRandomValues(new Uint8Array(PING_BYTES))
      const [, echoed] = await Promise.all([bytes.write(sent, { signal }), bytes.read({ bytes: PING_BYTES, signal })])
      if (!equal(sent, echoed.subarray())) throw new Error('the ping answer did not echo the ping')
      connection.rtt = Date.now() - start
      await stream.close({ signal })
    } catch (error) {
      stream.abort(error as Error)
      throw error
    }
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** The liveness service, for libp2p's `services`. */
export function liveness(init: LivenessInit = {}): (components: LivenessComponents) => Liveness {
  return (components) => new Liveness(components, init)
}

import type { Stream } from '@libp2p/interface'
import { ShoalError } from '../errors.js'

/** A peer sent nothing on a stream for longer than allowed while an answer (or the next request) was due. */
export class PeerSilentError extends ShoalError {
  constructor(peer: string, ms: number) {
    super('PEER_SILENT', `no bytes from ${peer} for ${(ms / 1000).toFixed(0)} s while waiting on it: the link or the peer is stalled (the round ends; a later one resumes where this one stopped)`)
  }
}

/**
 * A timeout that measures silence, not total duration: it fires only once nothing has arrived on
 * the stream (and nothing left it) for `ms`. A 256 KiB page takes 8 s on a 256 kbit/s link and
 * a few milliseconds on a LAN; a slow page keeps the stream busy the whole time, a stalled peer
 * does not.
 */
export class SilenceWatch {
  private last = 0
  private controller: AbortController | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private readonly onActivity = (): void => {
    this.last = performance.now()
  }

  constructor(
    private readonly stream: Stream,
    private readonly peer: string,
    private readonly ms: number,
    private readonly parent: AbortSignal,
  ) {
    stream.addEventListener('message', this.onActivity)
    stream.addEventListener('drain', this.onActivity)
  }

  /** A signal for the next wait: aborted by the parent, or after `ms` without activity from now on. */
  begin(): AbortSignal {
    this.end()
    this.last = performance.now()
    const controller = new AbortController()
    this.controller = controller
    const check = (): void => {
      const quiet = performance.now() - this.last
      if (quiet >= this.ms) controller.abort(new PeerSilentError(this.peer, this.ms))
      else this.timer = setTimeout(check, this.ms - quiet)
    }
    this.timer = setTimeout(check, this.ms)
    return AbortSignal.any([this.parent, controller.signal])
  }

  /** The wait is over: no timer left running. */
  end(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.controller = null
  }

  /** Stops listening to the stream. */
  close(): void {
    this.end()
    this.stream.removeEventListener('message', this.onActivity)
    this.stream.removeEventListener('drain', this.onActivity)
  }
}

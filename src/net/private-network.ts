import { randomBytes } from 'node:crypto'
import { xsalsa20 } from '@noble/ciphers/salsa.js'
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import { isWebSocketAddress } from './shoal-node.js'

/*
 * The libp2p private network ("pnet") connection protector: both ends send a random 24-byte
 * nonce, then everything each sends is XORed with the XSalsa20 keystream of (mesh secret, its own
 * nonce). A node without the secret decrypts noise: Noise's handshake, the first thing after the
 * nonces, fails, and it learns nothing, not even the protocols spoken. The wire format is
 * @libp2p/pnet's (test/net/pnet.test.ts connects the two). WebSocket connections are not
 * protected (isWebSocketAddress).
 *
 * Ours rather than @libp2p/pnet's own: its XSalsa20 (the `xsalsa20` WebAssembly package) keeps a
 * view of the module's memory per stream, and once one message larger than the initial 640 KiB
 * makes the memory grow, every other stream's view is stale and grows it again on its next
 * message, until the 64 MiB ceiling throws from inside an event listener: the connection dies
 * and the process sees an uncaught RangeError (found sending a 4 MiB message, then echoing
 * small ones). @noble/ciphers' XSalsa20 (already loaded by Noise) has no such state.
 */

/** What the muxer hands over to send: libp2p's Uint8ArrayList (named through the class, whose package version it fixes). */
type Outgoing = Parameters<AbstractMultiaddrConnection['sendData']>[0]

const NONCE_BYTES = 24
const BLOCK = 64
/** The nonce exchange must finish within this (a stranger that never answers is dropped). */
const DEFAULT_NONCE_TIMEOUT_MS = 5_000

/** Keystream made at a time: one cipher call serves many small messages (each call derives the subkey again). */
const KEYSTREAM_CHUNK = 16 * 1024

/** XSalsa20 as a stream: XORs successive chunks with successive keystream bytes. */
export class KeystreamXor {
  private keystream = new Uint8Array(0)
  private used = 0
  /** The next keystream block to make. */
  private counter = 0

  constructor(
    private readonly key: Uint8Array,
    private readonly nonce: Uint8Array,
  ) {}

  update(data: Uint8Array): Uint8Array {
    const out = new Uint8Array(data.length)
    let done = 0
    while (done < data.length) {
      if (this.used === this.keystream.length) {
        this.keystream = xsalsa20(this.key, this.nonce, new Uint8Array(KEYSTREAM_CHUNK), undefined, this.counter)
        this.counter += KEYSTREAM_CHUNK / BLOCK
        this.used = 0
      }
      const n = Math.min(data.length - done, this.keystream.length - this.used)
      const ks = this.keystream
      const from = this.used
      for (let i = 0; i < n; i++) out[done + i] = data[done + i]! ^ ks[from + i]!
      this.used += n
      done += n
    }
    return out
  }
}

class ProtectedConnection extends AbstractMultiaddrConnection {
  private readonly inbound: KeystreamXor
  private readonly outbound: KeystreamXor

  constructor(
    private readonly inner: MultiaddrConnection,
    key: Uint8Array,
    nonces: { local: Uint8Array; remote: Uint8Array },
  ) {
    super({ remoteAddr: inner.remoteAddr, direction: inner.direction, log: inner.log.newScope('pnet') })
    this.inbound = new KeystreamXor(key, nonces.remote)
    this.outbound = new KeystreamXor(key, nonces.local)
    inner.addEventListener('message', (event) => {
      const data = event.data
      if (data instanceof Uint8Array) this.onData(this.inbound.update(data))
      else for (const chunk of data) this.onData(this.inbound.update(chunk))
    })
    inner.addEventListener('drain', () => this.onMuxerDrain())
    inner.addEventListener('close', (event) => {
      if (event.error === undefined) this.onTransportClosed()
      else if (event.local === true) this.abort(event.error)
      else this.onRemoteReset()
    })
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.inner.close(options)
  }

  sendData(data: Outgoing): { sentBytes: number; canSendMore: boolean } {
    const sentBytes = data.byteLength
    let canSendMore = true
    for (const chunk of data) canSendMore = this.inner.send(this.outbound.update(chunk))
    return { sentBytes, canSendMore }
  }

  sendReset(error: Error): void {
    this.inner.abort(error)
  }

  sendPause(): void {
    this.inner.pause()
  }

  sendResume(): void {
    this.inner.resume()
  }
}

class PrivateNetworkProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'shoal:pnet'

  constructor(
    private readonly key: Uint8Array,
    private readonly timeoutMs: number,
  ) {}

  async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    if (isWebSocketAddress((connection as MultiaddrConnection).remoteAddr)) return connection
    const signal = options?.signal ?? AbortSignal.timeout(this.timeoutMs)
    const local = new Uint8Array(randomBytes(NONCE_BYTES))
    const bytes = byteStream(connection as MultiaddrConnection)
    const [remote] = await Promise.all([bytes.read({ bytes: NONCE_BYTES, signal }), bytes.write(local, { signal })])
    return new ProtectedConnection(bytes.unwrap(), this.key, { local, remote: remote.subarray() })
  }
}

/**
 * A libp2p `connectionProtector` for a private network with this 32-byte secret (the decoded
 * swarm key: trust/swarm-key.ts `swarmKeySecret`).
 */
export function privateNetwork(secret: Uint8Array, options: { timeoutMs?: number } = {}): () => ConnectionProtector {
  if (secret.length !== 32) throw new Error(`a private network secret is 32 bytes, not ${secret.length}`)
  const key = new Uint8Array(secret)
  return () => new PrivateNetworkProtector(key, options.timeoutMs ?? DEFAULT_NONCE_TIMEOUT_MS)
}

import type { ConnectionEncrypter, MessageStream } from '@libp2p/interface'

/*
 * Noise hands each encrypted message to the connection as two pieces, its 2-byte length and the
 * ciphertext, and the TCP connection writes every piece with its own socket write. With Nagle off
 * (libp2p's default) each piece leaves as its own TCP segment: on a 256 kbit/s link a tcpdump of
 * a catch-up showed a quarter of all packets carrying 2 bytes, each with ~66 bytes of headers and
 * an ack of its own. This wrapper gives the encrypter a view of the connection whose `send` joins
 * the pieces of one message into one buffer first; everything else goes to the connection as is.
 */

type EncrypterFactory<C> = (components: C) => ConnectionEncrypter

/** One chunk or a list of them (uint8arraylist's Uint8ArrayList, recognised by its shape). */
type Chunks = Uint8Array | { readonly bufs: readonly Uint8Array[]; subarray(): Uint8Array }

function joined(data: Chunks): Uint8Array | Chunks {
  return data instanceof Uint8Array || data.bufs.length <= 1 ? data : data.subarray()
}

/** The connection, with each send's pieces joined into one write. */
export function coalescingSends<S extends MessageStream>(connection: S): S {
  const send = (data: Chunks): boolean => connection.send(joined(data) as Parameters<S['send']>[0])
  return new Proxy(connection, {
    get(target, property) {
      if (property === 'send') return send
      const value: unknown = Reflect.get(target, property, target)
      // Methods run on the connection itself; a function held as a field (its logger, which
      // carries functions of its own) is handed out as it is.
      return typeof value === 'function' && !Object.prototype.hasOwnProperty.call(target, property) ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
    set(target, property, value) {
      return Reflect.set(target, property, value, target)
    },
  })
}

/** `factory`'s encrypter, handed connections whose sends are coalesced (see above). */
export function coalescing<C>(factory: EncrypterFactory<C>): EncrypterFactory<C> {
  return (components) => {
    const inner = factory(components)
    return Object.assign(Object.create(inner) as ConnectionEncrypter, {
      secureOutbound: (connection: MessageStream, options?: Parameters<ConnectionEncrypter['secureOutbound']>[1]) => inner.secureOutbound(coalescingSends(connection), options),
      secureInbound: (connection: MessageStream, options?: Parameters<ConnectionEncrypter['secureInbound']>[1]) => inner.secureInbound(coalescingSends(connection), options),
    })
  }
}

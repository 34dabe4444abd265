import { ProtocolError } from '../errors.js'
import { errorText } from '../log.js'
import { deflateRaw, inflateRaw, InflateLimitError } from './deflate.js'
import { decodeDeflatedMessage, encodeDeflatedMessage, gossipKind, MAX_GOSSIP_BYTES } from './gossip.js'

/*
 * Deflated gossip. A message of row deltas repeats itself: column names, the writer's actor id in
 * every delta, key prefixes. 50 one-column updates of the bench's `stock` rows take 3.7 KB plain
 * and 0.4 KB deflated (9×), 10 of them 4.5× (bench/README.md, "Row path"). The sender deflates a
 * message when it is big enough to gain and keeps it deflated only when that saved bytes.
 */

/** Messages smaller than this go plain: a lone delta gains a few bytes at most. */
export const MIN_GOSSIP_DEFLATE_BYTES = 256

/** The message as it goes on the wire: deflated and wrapped when that is smaller, else as it is. */
export async function packGossip(message: Uint8Array): Promise<Uint8Array> {
  if (message.length < MIN_GOSSIP_DEFLATE_BYTES) return message
  const wrapped = encodeDeflatedMessage(await deflateRaw(message))
  return wrapped.length < message.length ? wrapped : message
}

/**
 * The deltas or changeset message inside a deflated one. Refused (ProtocolError) when it is not
 * deflate, inflates past MAX_GOSSIP_BYTES (inflating stops there), or holds anything but a
 * deltas or changeset message (a deflated message inside a deflated one included).
 */
export async function unpackGossip(bytes: Uint8Array): Promise<Uint8Array> {
  const packed = decodeDeflatedMessage(bytes)
  let inner: Uint8Array
  try {
    inner = await inflateRaw(packed, MAX_GOSSIP_BYTES)
  } catch (error) {
    if (error instanceof InflateLimitError) throw new ProtocolError(`deflated gossip message inflates past the ${MAX_GOSSIP_BYTES}-byte limit`)
    throw new ProtocolError(`deflated gossip message is not valid deflate: ${errorText(error)}`)
  }
  const kind = gossipKind(inner)
  if (kind !== 'deltas' && kind !== 'changeset') throw new ProtocolError('deflated gossip message holds neither row deltas nor a changeset')
  return inner
}

/**
 * Runs steps one after another per key (a topic), so messages keep their order on a topic while
 * some of them wait for deflate or inflate (asynchronous, off the main thread in Node). A key
 * with nothing queued costs nothing: callers run plain messages at once unless `busy(key)`.
 */
export class SerialByKey {
  private readonly tails = new Map<string, Promise<unknown>>()

  busy(key: string): boolean {
    return this.tails.has(key)
  }

  /** Resolves once every step queued so far has run. */
  async idle(): Promise<void> {
    await Promise.all(this.tails.values())
  }

  run<T>(key: string, step: () => T | Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(step)
    const tail = result.then(
      () => undefined,
      () => undefined,
    )
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return result
  }
}

import { ProtocolError } from '../errors.js'
import { errorText } from '../log.js'
import { deflateRaw, inflateRaw, InflateLimitError } from './deflate.js'

/*
 * Frames of /shoal/sync/1.1.0: one flag byte, then the CBOR frame as it is (FLAG_PLAIN) or
 * deflated (FLAG_DEFLATE, raw deflate). Row pages are repetitive (column names, client ids, key
 * prefixes in every row): a 270 KB page of 1,708 Yjs rows deflates to 25 KB (11×) in 1.8 ms,
 * one of 845 Automerge rows to 52 KB (5×) in 1.5 ms, against ~40 ms to apply such a page. A frame
 * is deflated only when it is big enough to gain, and kept deflated only when that saved bytes.
 * Inflating is bounded: a frame that would grow past its cap is refused, not inflated.
 */

export const FLAG_PLAIN = 0
export const FLAG_DEFLATE = 1
/** Frames smaller than this go plain: their gain would not pay for the work. */
export const MIN_DEFLATE_BYTES = 1024

/** The frame as sent on 1.1.0: deflated when it pays. */
export async function packFrame(frame: Uint8Array): Promise<Uint8Array> {
  if (frame.length >= MIN_DEFLATE_BYTES) {
    const packed = await deflateRaw(frame)
    if (packed.length + 1 < frame.length) return withFlag(FLAG_DEFLATE, packed)
  }
  return withFlag(FLAG_PLAIN, frame)
}

/** The CBOR frame inside a 1.1.0 frame; a frame that inflates past `maxBytes`, or is not deflate, is refused. */
export async function unpackFrame(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  if (bytes.length === 0) throw new ProtocolError('empty sync frame (a 1.1.0 frame starts with a flag byte)')
  const body = bytes.subarray(1)
  if (bytes[0] === FLAG_PLAIN) return body
  if (bytes[0] !== FLAG_DEFLATE) throw new ProtocolError(`sync frame with unknown flag ${bytes[0]} (0: plain, 1: deflate)`)
  try {
    return await inflateRaw(body, maxBytes)
  } catch (error) {
    if (error instanceof InflateLimitError) throw new ProtocolError(`deflated sync frame inflates past ${maxBytes} bytes`)
    throw new ProtocolError(`deflated sync frame is not valid deflate: ${errorText(error)}`)
  }
}

function withFlag(flag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1)
  out[0] = flag
  out.set(body, 1)
  return out
}

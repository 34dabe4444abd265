/*
 * Port: raw deflate for 1.1.0's frames, in a browser: the native CompressionStream
 * ('deflate-raw'), which speaks the same format as zlib's deflateRaw.
 */

/** Raw deflate. */
export async function deflateRaw(bytes: Uint8Array): Promise<Uint8Array> {
  const { out } = await pump(bytes, new CompressionStream('deflate-raw'), Number.MAX_SAFE_INTEGER)
  return out
}

/** Thrown by inflateRaw when the output would pass its bound. */
export class InflateLimitError extends Error {}

/** Inflates raw deflate; throws InflateLimitError (and stops reading) once the output would exceed `maxBytes`. */
export async function inflateRaw(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const { out, over } = await pump(bytes, new DecompressionStream('deflate-raw'), maxBytes)
  if (over) throw new InflateLimitError(`inflates past ${maxBytes} bytes`)
  return out
}

async function pump(bytes: Uint8Array, stream: CompressionStream | DecompressionStream, maxBytes: number): Promise<{ out: Uint8Array; over: boolean }> {
  const writer = stream.writable.getWriter()
  // Errors of the write side surface on the read side; this one is only kept from going unhandled.
  const written = writer.write(bytes as Uint8Array<ArrayBuffer>).then(() => writer.close()).catch(() => undefined)
  const reader = stream.readable.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.length
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined)
      return { out: new Uint8Array(0), over: true }
    }
    chunks.push(value)
  }
  await written
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return { out, over: false }
}

import { promisify } from 'node:util'
import { deflateRaw as zlibDeflateRaw, inflateRaw as zlibInflateRaw } from 'node:zlib'

/*
 * Port: raw deflate for 1.1.0's frames. Node: zlib, off the main thread. The browser build
 * replaces this module with deflate.browser.ts (package.json "browser").
 */

const deflate = promisify(zlibDeflateRaw)
const inflate = promisify(zlibInflateRaw)

/** Raw deflate at zlib's default level (level 1 deflates a row page 8× instead of 11× and saves only ~1 ms of 256 KiB). */
export async function deflateRaw(bytes: Uint8Array): Promise<Uint8Array> {
  return deflate(bytes, { level: 6 })
}

/** Thrown by inflateRaw when the output would pass its bound. */
export class InflateLimitError extends Error {}

/** Inflates raw deflate; throws InflateLimitError (without inflating further) once the output would exceed `maxBytes`. */
export async function inflateRaw(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  try {
    return new Uint8Array(await inflate(bytes, { maxOutputLength: maxBytes }))
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new InflateLimitError(`inflates past ${maxBytes} bytes`)
    throw error
  }
}

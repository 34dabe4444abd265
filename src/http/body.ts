import type { IncomingMessage } from 'node:http'
import { HttpError } from './errors.js'

/**
 * Largest request body accepted. A row may be up to 1 MiB encoded (MAX_ROW_BYTES) and its JSON is
 * somewhat larger, so the cap sits above it: a big row is refused as ROW_TOO_LARGE, which says
 * what to do, rather than as an anonymous oversized body.
 */
export const MAX_BODY_BYTES = 2 * 1024 * 1024

/**
 * Past this much, an oversized body is no longer drained before answering but cut off. Draining
 * lets the client finish sending and read the 413 (a socket closed mid-upload usually surfaces as
 * a reset instead of the answer); the ceiling keeps a runaway upload from being read forever.
 */
const DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES

function tooLarge(): HttpError {
  return new HttpError(413, 'BODY_TOO_LARGE', `request body is over ${MAX_BODY_BYTES} bytes; send smaller rows or schemas`, { connection: 'close' })
}

/** Reads and parses a JSON request body; BODY_TOO_LARGE or BAD_JSON when it is not one. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'])
  // Not worth draining: answer at once and let the connection close after the answer.
  if (Number.isFinite(declared) && declared > DRAIN_LIMIT_BYTES) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > DRAIN_LIMIT_BYTES) {
        req.destroy()
        break
      }
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
    }
  } catch {
    // The client hung up before its body was complete: its mistake, not ours (no error logged).
    throw new HttpError(400, 'BODY_INCOMPLETE', `the request body ended after ${size} bytes, before what its Content-Length or chunked encoding announced; send the whole body`, { connection: 'close' })
  }
  if (size > MAX_BODY_BYTES) throw tooLarge()
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') throw new HttpError(400, 'BAD_JSON', 'request body is empty; send a JSON object')
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new HttpError(400, 'BAD_JSON', `request body is not valid JSON: ${(error as Error).message}`)
  }
}

import { decode, encode } from 'cborg'
import { ProtocolError } from '../errors.js'
import { MAX_DOCUMENT_BYTES } from './documents.js'

/*
 * The admission handshake (/shoal/admit/1.0.0, docs/trust.md): on every connection each side
 * sends its own signed admission and the mesh documents it holds (rules, revocations), so both
 * check the other before anything else is served, and rules and revocations spread on contact.
 * The same message is sent again to every connected peer when a peer learns a new document.
 * Pure: encoding and bounds only.
 */

export const ADMIT_PROTOCOL = '/shoal/admit/1.0.0'
export const HANDSHAKE_VERSION = 1
/** Documents in one handshake at most (rules, revocations); past it, the newest are sent. */
export const MAX_HANDSHAKE_DOCUMENTS = 4096
export const MAX_HANDSHAKE_BYTES = MAX_DOCUMENT_BYTES * 2 + MAX_HANDSHAKE_DOCUMENTS * 1024

export interface Handshake {
  /** The sender's own admission (null: it has none; the receiver hangs up). */
  admission: Uint8Array | null
  documents: Uint8Array[]
}

export function encodeHandshake(h: Handshake): Uint8Array {
  return encode([HANDSHAKE_VERSION, 'admit', h.admission, h.documents.slice(-MAX_HANDSHAKE_DOCUMENTS)])
}

export function decodeHandshake(bytes: Uint8Array): Handshake {
  if (bytes.length > MAX_HANDSHAKE_BYTES) throw new ProtocolError(`admission handshake of ${bytes.length} bytes is over the ${MAX_HANDSHAKE_BYTES}-byte limit`)
  let v: unknown
  try {
    v = decode(bytes)
  } catch (error) {
    throw new ProtocolError('admission handshake is not valid CBOR', { cause: error })
  }
  if (!Array.isArray(v) || v.length !== 4) throw new ProtocolError('admission handshake is not a [version, "admit", admission, documents] array')
  const [version, type, admission, documents] = v as unknown[]
  if (version !== HANDSHAKE_VERSION) throw new ProtocolError(`admission handshake has version ${JSON.stringify(version)}; this peer speaks ${HANDSHAKE_VERSION}`)
  if (type !== 'admit') throw new ProtocolError(`admission handshake type ${JSON.stringify(type)} is unknown`)
  const doc = (d: unknown, what: string): Uint8Array => {
    if (!(d instanceof Uint8Array) || d.length === 0 || d.length > MAX_DOCUMENT_BYTES) throw new ProtocolError(`${what} in the admission handshake must be 1…${MAX_DOCUMENT_BYTES} bytes`)
    return d
  }
  if (!Array.isArray(documents) || documents.length > MAX_HANDSHAKE_DOCUMENTS) throw new ProtocolError(`admission handshake documents must be a list of at most ${MAX_HANDSHAKE_DOCUMENTS}`)
  return { admission: admission === null ? null : doc(admission, 'the admission'), documents: documents.map((d) => doc(d, 'a document')) }
}

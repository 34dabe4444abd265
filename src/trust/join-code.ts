import { decode, encode } from 'cborg'
import { base64url } from 'multiformats/bases/base64'
import { MAX_DOCUMENT_BYTES } from './documents.js'
import { TrustError } from './errors.js'
import type { MeshMaterial } from './material.js'

/*
 * A join code: what a browser peer needs to enter a private mesh, in one URL-safe string (the
 * fragment of an admission link, `shoal mesh admit --link URL`): the mesh id and the signed
 * documents a member folder holds (the peer's admission, the rules, the revocations), never the
 * mesh secret. Nothing in it is trusted for arriving this way: the peer checks every signature
 * (Membership), and a code made for another peer's key admits nobody here.
 * Pure: encoding and bounds only.
 */

const VERSION = 1
/** Documents in one code at most (admission, rules, revocations). */
export const MAX_JOIN_DOCUMENTS = 1024
/** Characters of a code at most (a URL fragment browsers keep whole). */
export const MAX_JOIN_CODE_CHARS = 2 * 1024 * 1024

export type JoinMaterial = Omit<MeshMaterial, 'swarmKey'>

export function encodeJoinCode(material: JoinMaterial): string {
  return base64url.baseEncode(encode([VERSION, 'join', material.mesh, material.documents.slice(0, MAX_JOIN_DOCUMENTS)]))
}

/** The material in a code; TrustError JOIN_CODE_INVALID naming what is wrong. */
export function decodeJoinCode(code: string): JoinMaterial {
  const bad = (why: string): TrustError => new TrustError('JOIN_CODE_INVALID', `the join code ${why}; ask the mesh authority for a new admission link (shoal mesh admit --link …)`)
  if (typeof code !== 'string' || code.length === 0) throw bad('is empty')
  if (code.length > MAX_JOIN_CODE_CHARS) throw bad(`is ${code.length} characters long, over ${MAX_JOIN_CODE_CHARS}`)
  let value: unknown
  try {
    value = decode(base64url.baseDecode(code))
  } catch {
    throw bad('is not one (not base64url-encoded CBOR): was the link cut short?')
  }
  if (!Array.isArray(value) || value.length !== 4 || value[1] !== 'join') throw bad('is not a [version, "join", mesh, documents] array')
  const [version, , mesh, documents] = value as unknown[]
  if (version !== VERSION) throw bad(`has version ${JSON.stringify(version)}; this Shoal reads ${VERSION}`)
  if (typeof mesh !== 'string' || !/^[1-9A-HJ-NP-Za-km-z]{10,100}$/.test(mesh)) throw bad('names no valid mesh id')
  if (!Array.isArray(documents) || documents.length === 0 || documents.length > MAX_JOIN_DOCUMENTS) throw bad(`must hold 1 to ${MAX_JOIN_DOCUMENTS} documents`)
  for (const d of documents) if (!(d instanceof Uint8Array) || d.length === 0 || d.length > MAX_DOCUMENT_BYTES) throw bad(`holds a document that is not 1 to ${MAX_DOCUMENT_BYTES} bytes`)
  return { mesh, documents: documents as Uint8Array[] }
}

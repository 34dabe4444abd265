import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { API_TOKEN_BYTES } from './constants.js'

/** A new random API token (API_TOKEN_BYTES of entropy, base64url). */
export function createApiToken(): string {
  return randomBytes(API_TOKEN_BYTES).toString('base64url')
}

const BEARER = /^Bearer +([^\s]+) *$/i

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/**
 * Checks `Authorization: Bearer <token>` headers against one token in constant time: both sides
 * are hashed first, so neither the token's length nor how much of it matched shows in the timing.
 */
export class TokenCheck {
  private readonly expected: Buffer

  constructor(token: string) {
    this.expected = digest(token)
  }

  /** 'missing' (no header), 'malformed' (not `Bearer <token>`), 'wrong' or 'ok'. */
  verdict(authorization: string | undefined): 'missing' | 'malformed' | 'wrong' | 'ok' {
    if (authorization === undefined || authorization === '') return 'missing'
    const match = BEARER.exec(authorization)
    if (match === null) return 'malformed'
    return timingSafeEqual(digest(match[1]!), this.expected) ? 'ok' : 'wrong'
  }
}

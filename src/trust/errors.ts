import { ShoalError } from '../errors.js'

/**
 * A trust check failed: a document that is malformed, of another mesh, not signed by its
 * authority, expired or revoked; a peer without a valid admission; a change its author may not
 * make. `code` says which (DOCUMENT_INVALID, WRONG_MESH, SIGNATURE_INVALID, ADMISSION_EXPIRED,
 * REVOKED, NOT_ADMITTED, FORBIDDEN, …).
 */
export class TrustError extends ShoalError {
  constructor(code: string, message: string) {
    super(code, message)
  }
}

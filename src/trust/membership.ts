import { TrustError } from './errors.js'
import { encodeSigned, openSigned, type Admission, type Grant, type Revocation, type Rules, type Signed, type TableRule, type TrustDocument } from './documents.js'

/*
 * What a peer knows of its mesh: the rules in force (the highest version signed by the
 * authority), the revocations (a grow-only set), and the admissions presented to it. From these it
 * answers who is a member now, and what a member may write and read. Pure: the clock is injected.
 */

/** A member as the rules see it. */
export interface Member {
  peer: string
  group: string
  /** Its own partitions (rules granting 'own' mean these). */
  partitions: readonly string[]
  /** Its group may relay merged rows (docs/trust.md). */
  relay: boolean
  expiresAt: number
}

/** Revocations kept at most; past this a new one is refused (an authority revoking this many should start a new mesh). */
export const MAX_REVOCATIONS = 100_000
/** Admissions of peers remembered at most (members met, and members whose admissions were relayed). */
export const MAX_KNOWN_ADMISSIONS = 100_000

const DENY: TableRule = { write: {}, read: {} }

function granted(grants: Readonly<Record<string, Grant>>, member: Member, partition: string): boolean {
  const grant = grants[member.group] ?? grants['*']
  if (grant === undefined) return false
  return grant === '*' || member.partitions.includes(partition)
}

/** May `member` write (table, partition) under `rules`? No rules: nothing may be written. */
export function mayWrite(rules: Rules | null, member: Member, table: string, partition: string): boolean {
  if (rules === null) return false
  return granted((rules.tables[table] ?? rules.otherTables ?? DENY).write, member, partition)
}

/** May `member` receive rows of (table, partition)? */
export function mayRead(rules: Rules | null, member: Member, table: string, partition: string): boolean {
  if (rules === null) return false
  return granted((rules.tables[table] ?? rules.otherTables ?? DENY).read, member, partition)
}

/** The partitions of a table `member` may read: '*' (all), or the listed ones. */
export function readablePartitions(rules: Rules | null, member: Member, table: string): '*' | readonly string[] {
  if (rules === null) return []
  const grants = (rules.tables[table] ?? rules.otherTables ?? DENY).read
  const grant = grants[member.group] ?? grants['*']
  if (grant === undefined) return []
  return grant === '*' ? '*' : member.partitions
}

export type AddOutcome = 'new' | 'known' | 'older'

export class Membership {
  private rulesDoc: Signed<Rules> | null = null
  /** peer → revocations of it (serial '*': every admission). */
  private readonly revocations = new Map<string, Array<Signed<Revocation>>>()
  private revocationCount = 0
  /** peer → its newest admission seen. */
  private readonly admissions = new Map<string, Signed<Admission>>()
  /** Called when rules or revocations change (peers re-check their connections). */
  onChange: (() => void) | undefined

  constructor(
    readonly mesh: string,
    private readonly now: () => number = Date.now,
  ) {}

  get rules(): Rules | null {
    return this.rulesDoc?.document ?? null
  }

  /** Checks and takes in a signed document of any kind; TrustError if it is not a valid one of this mesh. */
  async add(bytes: Uint8Array): Promise<{ document: TrustDocument; outcome: AddOutcome }> {
    const signed = await openSigned(bytes, this.mesh)
    return { document: signed.document, outcome: this.take(signed) }
  }

  private take(signed: Signed<TrustDocument>): AddOutcome {
    const d = signed.document
    switch (d.kind) {
      case 'rules': {
        const current = this.rulesDoc?.document
        if (current !== undefined && current.version > d.version) return 'older'
        if (current !== undefined && current.version === d.version) return 'known'
        this.rulesDoc = signed as Signed<Rules>
        this.onChange?.()
        return 'new'
      }
      case 'revocation': {
        const list = this.revocations.get(d.peer) ?? []
        if (list.some((r) => r.document.serial === d.serial && r.document.issuedAt === d.issuedAt)) return 'known'
        if (this.revocationCount >= MAX_REVOCATIONS) throw new TrustError('TOO_MANY_REVOCATIONS', `this peer holds ${MAX_REVOCATIONS} revocations, the limit; start a new mesh`)
        list.push(signed as Signed<Revocation>)
        this.revocations.set(d.peer, list)
        this.revocationCount++
        this.onChange?.()
        return 'new'
      }
      case 'admission': {
        const current = this.admissions.get(d.peer)?.document
        if (current !== undefined && current.issuedAt > d.issuedAt) return 'older'
        if (current !== undefined && current.serial === d.serial) return 'known'
        if (current === undefined && this.admissions.size >= MAX_KNOWN_ADMISSIONS) this.admissions.delete(this.admissions.keys().next().value!)
        this.admissions.set(d.peer, signed as Signed<Admission>)
        return 'new'
      }
    }
  }

  /**
   * Checks the admission a peer presented as its own (`peer`: who it is, as the connection proved)
   * and takes it in; returns the member it makes. TrustError (NOT_ADMITTED, ADMISSION_EXPIRED,
   * REVOKED, ADMISSION_SUPERSEDED, WRONG_MESH, SIGNATURE_INVALID, DOCUMENT_INVALID) otherwise.
   */
  async admit(peer: string, bytes: Uint8Array): Promise<Member> {
    const signed = await openSigned(bytes, this.mesh)
    const d = signed.document
    if (d.kind !== 'admission') throw new TrustError('NOT_ADMITTED', `peer ${peer} presented a ${d.kind}, not an admission`)
    if (d.peer !== peer) throw new TrustError('NOT_ADMITTED', `peer ${peer} presented the admission of another peer (${d.peer})`)
    const known = this.admissions.get(peer)?.document
    if (known !== undefined && known.issuedAt > d.issuedAt) throw new TrustError('ADMISSION_SUPERSEDED', `peer ${peer} presented an admission (serial ${d.serial}) older than its newest one (serial ${known.serial})`)
    this.checkAdmission(d)
    this.take(signed)
    return this.memberOf(d)
  }

  private checkAdmission(d: Admission): void {
    const now = this.now()
    if (d.expiresAt <= now) throw new TrustError('ADMISSION_EXPIRED', `the admission of ${d.peer} (serial ${d.serial}) expired at ${new Date(d.expiresAt).toISOString()}`)
    if (d.issuedAt > now + CLOCK_SKEW_MS) throw new TrustError('ADMISSION_NOT_YET_VALID', `the admission of ${d.peer} is issued in the future (${new Date(d.issuedAt).toISOString()}); check the clocks`)
    for (const r of this.revocations.get(d.peer) ?? []) {
      if (r.document.serial === '*' || r.document.serial === d.serial) {
        throw new TrustError('REVOKED', `peer ${d.peer} is revoked (${r.document.reason || 'no reason given'}, ${new Date(r.document.issuedAt).toISOString()})`)
      }
    }
  }

  private memberOf(d: Admission): Member {
    const relay = this.rules?.groups[d.group]?.relay ?? false
    return { peer: d.peer, group: d.group, partitions: d.partitions, relay, expiresAt: d.expiresAt }
  }

  /** The member `peer` is now (admission known, valid, not revoked), or null. */
  member(peer: string): Member | null {
    const signed = this.admissions.get(peer)
    if (signed === undefined) return null
    try {
      this.checkAdmission(signed.document)
    } catch {
      return null
    }
    return this.memberOf(signed.document)
  }

  /** Like member(), but says why not. */
  requireMember(peer: string): Member {
    const signed = this.admissions.get(peer)
    if (signed === undefined) throw new TrustError('NOT_ADMITTED', `peer ${peer} has presented no admission to mesh ${this.mesh}`)
    this.checkAdmission(signed.document)
    return this.memberOf(signed.document)
  }

  mayWrite(peer: string, table: string, partition: string): boolean {
    const m = this.member(peer)
    return m !== null && mayWrite(this.rules, m, table, partition)
  }

  mayRead(peer: string, table: string, partition: string): boolean {
    const m = this.member(peer)
    return m !== null && mayRead(this.rules, m, table, partition)
  }

  /** The signed admission of a peer, as it was presented (to relay it, or to present one's own). */
  admissionOf(peer: string): Uint8Array | null {
    const signed = this.admissions.get(peer)
    return signed === undefined ? null : encodeSigned(signed)
  }

  /** Rules and revocations, encoded: what peers exchange so they all enforce the same. */
  shared(): Uint8Array[] {
    const out: Uint8Array[] = []
    if (this.rulesDoc !== null) out.push(encodeSigned(this.rulesDoc))
    for (const list of this.revocations.values()) for (const r of list) out.push(encodeSigned(r))
    return out
  }

  /** A short summary of shared(): equal summaries mean nothing to exchange. */
  summary(): { rulesVersion: number; revocations: number } {
    return { rulesVersion: this.rules?.version ?? 0, revocations: this.revocationCount }
  }

  /** Peers whose admission this membership knows and that are no longer members (revoked, expired). */
  lapsed(peers: Iterable<string>): string[] {
    return [...peers].filter((p) => this.admissions.has(p) && this.member(p) === null)
  }
}

/** Clocks of peers may differ this much: an admission issued up to this far in the future is taken. */
export const CLOCK_SKEW_MS = 5 * 60_000

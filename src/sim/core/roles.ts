import * as v from 'valibot'
import { NAME_PATTERN } from '../../constants.js'
import { MAX_GROUPS, MAX_OWN_PARTITIONS, type Grant, type Rules, type TableRule } from '../../trust/documents.js'
import { mayWrite, type Member } from '../../trust/membership.js'
import type { ResolvedSchema } from '../../table/schema.js'
import { entriesOf, fields, integerIn, oneOf, shown } from '../../validation.js'

/*
 * Roles in a simulated mesh (docs/trust.md): groups, rules per table (which groups may write and
 * read which partitions: '*' all, 'own' the member's own), and each peer's group and own
 * partitions. The scenario's `mesh` section, validated here; rules evaluated with the trust core's
 * own mayWrite, so the simulator holds peers to exactly what a real peer would.
 */

export interface MeshSpec {
  groups: Record<string, { relay: boolean }>
  tables: Record<string, TableRule>
  /** For tables not listed under `tables`. */
  otherTables: TableRule
  /** Per peer index: its group and its own partitions. */
  members: Array<{ group: string; partitions: string[] }>
}

/** The rules document of a mesh spec (the simulator signs it with its authority key in model mode). */
export function rulesOf(spec: MeshSpec, mesh: string, issuedAt: number): Rules {
  return { kind: 'rules', mesh, version: 1, issuedAt, groups: spec.groups, tables: spec.tables, otherTables: spec.otherTables }
}

/** Who may write what in a run, and who writes regardless (the scenario's rogue writers). */
export interface Roles {
  spec: MeshSpec
  mayWrite(peer: number, table: string, partition: string): boolean
  /** Whether the workload lets this peer write where its rights do not reach. */
  writesOutsideRights(peer: number): boolean
  /** False only in tests proving the checker bites: peers then accept every author's deltas. */
  enforced: boolean
}

export function rolesOf(scenario: { peers: number; mesh: MeshSpec | null; workload: { outsideRights: number[] } }, enforced: boolean): Roles | null {
  const spec = scenario.mesh
  if (spec === null) return null
  const rules = rulesOf(spec, '', 0)
  const members: Member[] = spec.members.map((m, i) => ({ peer: `p${i}`, group: m.group, partitions: m.partitions, relay: spec.groups[m.group]?.relay ?? false, expiresAt: Infinity }))
  const rogues = new Set(scenario.workload.outsideRights)
  return {
    spec,
    mayWrite: (peer, table, partition) => mayWrite(rules, members[peer]!, table, partition),
    writesOutsideRights: (peer) => rogues.has(peer),
    enforced,
  }
}

const GRANT_MESSAGE = 'must be "*" (every partition) or "own" (the member\'s own partitions)'

/**
 * The schema of a scenario's `mesh` section, for `peers` peers and these tables. Every peer is in
 * exactly one `members` entry; groups named in grants and members are declared under `groups`.
 */
export function meshSchema(peers: number, tables: readonly ResolvedSchema[]) {
  const groupName = v.pipe(
    v.string('must be a group name'),
    v.check((g) => NAME_PATTERN.test(g), (issue) => `must be a group name: a letter, then letters, digits or _ (got ${shown(issue.input)})`),
  )
  const grants = entriesOf(
    v.pipe(v.string(), v.check((g) => g === '*' || NAME_PATTERN.test(g), (issue) => `must be a group name or "*" (got ${shown(issue.input)})`)),
    v.picklist(['*', 'own'] as const, GRANT_MESSAGE),
    'must be an object of group → "*" | "own"',
  )
  const tableRule = fields({ write: v.optional(grants, {}), read: v.optional(grants, {}) })
  const partition = v.pipe(v.string('must be a partition value (a string)'))
  const peer = integerIn(0, peers - 1)
  return v.pipe(
    fields({
      groups: v.pipe(
        entriesOf(groupName, v.optional(fields({ relay: v.optional(v.boolean('must be true or false'), false) }), {}), 'must be an object of group → { relay? }'),
        v.check((g) => Object.keys(g).length >= 1 && Object.keys(g).length <= MAX_GROUPS, `must name 1 to ${MAX_GROUPS} groups`),
      ),
      tables: v.optional(entriesOf(oneOf(tables.map((t) => t.name)), tableRule, 'must be an object of table → { write, read }'), {}),
      otherTables: v.optional(tableRule, {}),
      members: v.array(
        fields({
          peers: v.pipe(v.array(peer, 'must be an array of peer indexes'), v.minLength(1, 'must be a non-empty array of peer indexes')),
          group: groupName,
          partitions: v.optional(v.pipe(v.array(partition, 'must be an array of partition values'), v.maxLength(MAX_OWN_PARTITIONS, `must list at most ${MAX_OWN_PARTITIONS} partitions`)), []),
        }),
        'must be an array of { peers: [indexes], group, partitions? }',
      ),
    }),
    v.check((m) => m.members.every((e) => Object.hasOwn(m.groups, e.group)), (issue) => `member group '${issue.input.members.find((e) => !Object.hasOwn(issue.input.groups, e.group))?.group}' is not declared under 'groups'`),
    v.check(
      (m) => grantedGroups(m).every((g) => Object.hasOwn(m.groups, g)),
      (issue) => `rules grant to group '${grantedGroups(issue.input).find((g) => !Object.hasOwn(issue.input.groups, g))}', which is not declared under 'groups'`,
    ),
    v.check(
      (m) => coverage(m.members, peers).length === 0,
      (issue) => `every peer must be in exactly one 'members' entry: ${coverage(issue.input.members, peers).join('; ')}`,
    ),
    v.transform(
      (m): MeshSpec => ({
        groups: m.groups as Record<string, { relay: boolean }>,
        tables: m.tables as Record<string, TableRule>,
        otherTables: m.otherTables as TableRule,
        members: memberList(m.members, peers),
      }),
    ),
  )
}

function grantedGroups(m: { tables: Record<string, { write: Record<string, Grant>; read: Record<string, Grant> }>; otherTables: { write: Record<string, Grant>; read: Record<string, Grant> } }): string[] {
  const rules = [...Object.values(m.tables), m.otherTables]
  return rules.flatMap((r) => [...Object.keys(r.write), ...Object.keys(r.read)]).filter((g) => g !== '*')
}

function coverage(members: ReadonlyArray<{ peers: number[] }>, peers: number): string[] {
  const seen = new Map<number, number>()
  for (const e of members) for (const p of e.peers) seen.set(p, (seen.get(p) ?? 0) + 1)
  const missing = Array.from({ length: peers }, (_, i) => i).filter((p) => !seen.has(p))
  const twice = [...seen].filter(([, n]) => n > 1).map(([p]) => p)
  return [...(missing.length > 0 ? [`peer ${missing.slice(0, 10).join(', ')} in none`] : []), ...(twice.length > 0 ? [`peer ${twice.slice(0, 10).join(', ')} in more than one`] : [])]
}

function memberList(members: ReadonlyArray<{ peers: number[]; group: string; partitions: string[] }>, peers: number): MeshSpec['members'] {
  const out: MeshSpec['members'] = Array.from({ length: peers }, () => ({ group: '', partitions: [] }))
  for (const e of members) for (const p of e.peers) out[p] = { group: e.group, partitions: [...e.partitions] }
  return out
}

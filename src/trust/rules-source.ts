import * as v from 'valibot'
import { NAME_PATTERN } from '../constants.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { entriesOf, fields, parseWith, shown, type Issue } from '../validation.js'
import { MAX_GROUPS, MAX_RULE_TABLES, type Grant, type Rules, type TableRule } from './documents.js'
import { TrustError } from './errors.js'

/*
 * The rules as an operator writes them (an authority folder's rules.json, peers/rules.json): the
 * body of a rules document without what the authority adds when it signs (mesh, version, time).
 *
 *   { "groups": { "hq": { "relay": true }, "store": {} },
 *     "tables": { "catalog": { "write": { "hq": "*" }, "read": { "*": "*" } }, … },
 *     "otherTables": { "write": { "hq": "*" }, "read": { "hq": "*" } } }
 *
 * Checked declaratively, with messages naming the bad path; then for what a schema cannot say
 * (every group a table names is declared).
 */

export type RulesSource = Pick<Rules, 'groups' | 'tables' | 'otherTables'>

const groupName = v.pipe(
  v.string(),
  v.regex(NAME_PATTERN, (issue: Issue) => `is not a group name: a letter, then letters, digits or _ (got ${shown(issue.input)})`),
)
const grantee = v.union([v.literal('*'), groupName], (issue: Issue) => `is not a group name or "*" (got ${shown(issue.input)})`)
const grant = v.picklist(['*', 'own'] as const, (issue: Issue) => `must be "*" (every partition) or "own" (the member's own partitions) (got ${shown(issue.input)})`)
const grants = (what: string) =>
  v.pipe(
    entriesOf(grantee, grant, `must be an object of group → "*" | "own" (${what})`),
    v.check((o) => Object.keys(o).length <= MAX_GROUPS + 1, `names more than ${MAX_GROUPS} groups`),
  )
const tableRule = v.optional(
  fields({ write: v.optional(grants('who may write'), {}), read: v.optional(grants('who may receive rows'), {}) }, 'must be an object { "write": {…}, "read": {…} }'),
  { write: {}, read: {} },
)
const tableName = v.pipe(
  v.string(),
  v.check((t) => t === CATALOG_TABLE || NAME_PATTERN.test(t), (issue: Issue) => `is not a table name (got ${shown(issue.input)})`),
)

export const RULES_SOURCE_SCHEMA = fields(
  {
    groups: v.pipe(
      entriesOf(groupName, v.optional(fields({ relay: v.optional(v.boolean('must be true or false'), false) }, 'must be an object { "relay"?: true|false }'), { relay: false }), 'must be an object of group → { "relay"?: true|false }'),
      v.check((o) => Object.keys(o).length >= 1, 'must declare at least one group'),
      v.check((o) => Object.keys(o).length <= MAX_GROUPS, `declares more than ${MAX_GROUPS} groups`),
    ),
    tables: v.optional(
      v.pipe(
        entriesOf(tableName, tableRule, 'must be an object of table → { "write", "read" }'),
        v.check((o) => Object.keys(o).length <= MAX_RULE_TABLES, `lists more than ${MAX_RULE_TABLES} tables`),
      ),
      {},
    ),
    otherTables: tableRule,
  },
  'must be a JSON object { "groups", "tables", "otherTables" }',
)

function undeclared(rule: TableRule, groups: Readonly<Record<string, unknown>>): string | undefined {
  return [...Object.keys(rule.write), ...Object.keys(rule.read)].find((g) => g !== '*' && !Object.hasOwn(groups, g))
}

/** Validates a parsed rules source; TrustError (RULES_INVALID) naming the source and the bad path. */
export function parseRulesSource(input: unknown, source: string): RulesSource {
  const parsed = parseWith(RULES_SOURCE_SCHEMA, input, { source, what: 'the rules', error: (message) => new TrustError('RULES_INVALID', message) })
  const groups: Record<string, { relay: boolean }> = {}
  for (const [g, spec] of Object.entries(parsed.groups)) groups[g] = { relay: spec.relay }
  const tables: Record<string, TableRule> = {}
  for (const [t, rule] of Object.entries(parsed.tables)) {
    const bad = undeclared(rule, groups)
    if (bad !== undefined) throw new TrustError('RULES_INVALID', `${source}: 'tables.${t}' names group '${bad}', which 'groups' does not declare (groups: ${Object.keys(groups).join(', ')})`)
    tables[t] = rule as TableRule
  }
  const bad = undeclared(parsed.otherTables, groups)
  if (bad !== undefined) throw new TrustError('RULES_INVALID', `${source}: 'otherTables' names group '${bad}', which 'groups' does not declare (groups: ${Object.keys(groups).join(', ')})`)
  return { groups, tables, otherTables: parsed.otherTables as TableRule }
}

/** Parses rules.json text; TrustError naming the source when it is not JSON or not valid rules. */
export function parseRulesText(text: string, source: string): RulesSource {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new TrustError('RULES_INVALID', `${source}: not valid JSON: ${(error as Error).message}`)
  }
  return parseRulesSource(parsed, source)
}

/** The source of signed rules (to show them, or write them back as rules.json). */
export function rulesSourceOf(rules: Rules): RulesSource {
  return { groups: rules.groups, tables: rules.tables, otherTables: rules.otherTables }
}

function grantText(g: Grant): string {
  return g === '*' ? 'all partitions' : 'own partitions'
}

/**
 * What a member of `group` with `partitions` may do, one line per table, for people:
 *   catalog   read: all partitions   write: —
 *   stock     read: own (1)          write: own (1)
 */
export function describeRights(rules: RulesSource, group: string, partitions: readonly string[]): string[] {
  const own = partitions.length === 0 ? 'own partitions (none named)' : `own partitions (${partitions.join(', ')})`
  const text = (grants: Readonly<Record<string, Grant>>): string => {
    const g = grants[group] ?? grants['*']
    return g === undefined ? '—' : g === 'own' ? own : grantText(g)
  }
  const names = Object.keys(rules.tables).sort()
  const width = Math.max(12, ...names.map((n) => n.length + 2))
  const lines = names.map((t) => `${t.padEnd(width)}read: ${text(rules.tables[t]!.read).padEnd(30)} write: ${text(rules.tables[t]!.write)}`)
  lines.push(`${'(others)'.padEnd(width)}read: ${text(rules.otherTables.read).padEnd(30)} write: ${text(rules.otherTables.write)}`)
  return lines
}

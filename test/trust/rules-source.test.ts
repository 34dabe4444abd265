import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { describeRights, parseRulesSource, parseRulesText } from '../../src/trust/rules-source.js'

const VALID = {
  groups: { hq: { relay: true }, store: {} },
  tables: { catalog: { write: { hq: '*' }, read: { '*': '*' } }, sales: { write: { store: 'own' }, read: { hq: '*', store: 'own' } } },
  otherTables: { write: { hq: '*' }, read: { hq: '*' } },
}

describe('rules source (rules.json)', () => {
  it('parses the shipped example rules, with defaults filled in', async () => {
    const rules = parseRulesText(await readFile('peers/rules.json', 'utf8'), 'peers/rules.json')
    expect(rules.groups).toEqual({ hq: { relay: true }, store: { relay: false } })
    expect(rules.tables.stock).toEqual({ write: { hq: '*', store: 'own' }, read: { hq: '*', store: 'own' } })
    expect(rules.tables._tables).toEqual({ write: { hq: '*' }, read: { '*': '*' } })
    expect(parseRulesSource({ groups: { a: {} } }, 'r.json')).toEqual({ groups: { a: { relay: false } }, tables: {}, otherTables: { write: {}, read: {} } })
  })

  it('names the bad path of malformed rules', () => {
    const bad = (input: unknown): string => {
      try {
        parseRulesSource(input, 'r.json')
      } catch (error) {
        expect((error as { code: string }).code).toBe('RULES_INVALID')
        return (error as Error).message
      }
      throw new Error('accepted')
    }
    expect(bad({ ...VALID, tables: { catalog: { write: { hq: 'all' } } } })).toMatch(/^r\.json: 'tables\.catalog\.write\.hq' must be "\*" \(every partition\) or "own"/)
    expect(bad({ ...VALID, tables: { catalog: { write: { hq: '*' }, reed: {} } } })).toMatch(/'tables\.catalog\.reed' is not a known field \(allowed: write, read\)/)
    expect(bad({ ...VALID, tables: { '1bad': {} } })).toMatch(/'tables\.1bad' is not a table name/)
    expect(bad({ ...VALID, tables: { sales: { write: { shop: 'own' } } } })).toMatch(/'tables\.sales' names group 'shop', which 'groups' does not declare \(groups: hq, store\)/)
    expect(bad({ ...VALID, otherTables: { read: { shop: '*' } } })).toMatch(/'otherTables' names group 'shop'/)
    expect(bad({ ...VALID, groups: {} })).toMatch(/'groups' must declare at least one group/)
    expect(bad({ ...VALID, groups: { hq: { relay: 'yes' } } })).toMatch(/'groups\.hq\.relay' must be true or false/)
    expect(bad({ ...VALID, groups: { 'h q': {} } })).toMatch(/'groups\.h q' .*is not a group name/)
    expect(bad({ ...VALID, extra: 1 })).toMatch(/'extra' is not a known field/)
    expect(bad([])).toMatch(/the rules must be a JSON object/)
    expect(() => parseRulesText('{', 'r.json')).toThrow(/r\.json: not valid JSON/)
  })

  it('describes a member\'s rights for people', () => {
    const rules = parseRulesSource(VALID, 'r.json')
    const lines = describeRights(rules, 'store', ['7'])
    expect(lines.find((l) => l.startsWith('catalog'))).toMatch(/read: all partitions\s+write: —/)
    expect(lines.find((l) => l.startsWith('sales'))).toMatch(/read: own partitions \(7\)\s+write: own partitions \(7\)/)
    expect(lines.find((l) => l.startsWith('(others)'))).toMatch(/read: —\s+write: —/)
  })
})

import { describe, expect, it } from 'vitest'
import { parseBridgeConfig } from '../../src/bridge/config.js'
import { BridgeConfigError, SqlTypeError, SqlValueError } from '../../src/bridge/errors.js'
import { planMirror } from '../../src/bridge/mirror.js'
import { canonicalJson, fromSqlValue, kindsForSqlType, sqlTypeForKind, toSqlValue, type DialectName } from '../../src/bridge/types.js'
import { COLUMN_KINDS, type ColumnKind } from '../../src/table/schema.js'

/* The type mapping table (README, "SQL bridge"), both ways, for every supported type and dialect. */

const SUPPORTED: Record<DialectName, Array<[string, ColumnKind[]]>> = {
  sqlite: [
    ['INTEGER', ['number', 'counter']],
    ['INT', ['number', 'counter']],
    ['BIGINT', ['number', 'counter']],
    ['REAL', ['number']],
    ['DOUBLE PRECISION', ['number']],
    ['FLOAT', ['number']],
    ['NUMERIC(10,2)', ['number']],
    ['DECIMAL', ['number']],
    ['TEXT', ['string', 'text', 'json']],
    ['VARCHAR(40)', ['string', 'text', 'json']],
    ['CHAR(2)', ['string', 'text', 'json']],
    ['CLOB', ['string', 'text', 'json']],
    ['BOOLEAN', ['boolean']],
    ['BOOL', ['boolean']],
    ['JSON', ['json', 'string', 'text']],
    ['DATE', ['string']],
    ['DATETIME', ['string']],
    ['TIMESTAMP', ['string']],
  ],
  postgres: [
    ['int2', ['number', 'counter']],
    ['int4', ['number', 'counter']],
    ['int8', ['number', 'counter']],
    ['float4', ['number']],
    ['float8', ['number']],
    ['numeric', ['number']],
    ['text', ['string', 'text', 'json']],
    ['varchar', ['string', 'text', 'json']],
    ['bpchar', ['string', 'text', 'json']],
    ['citext', ['string', 'text', 'json']],
    ['uuid', ['string']],
    ['bool', ['boolean']],
    ['json', ['json', 'string', 'text']],
    ['jsonb', ['json', 'string', 'text']],
    ['date', ['string']],
    ['time', ['string']],
    ['timestamp', ['string']],
    ['timestamptz', ['string']],
  ],
  mysql: [
    ['tinyint(4)', ['number', 'counter']],
    ['smallint(6)', ['number', 'counter']],
    ['mediumint(9)', ['number', 'counter']],
    ['int(11)', ['number', 'counter']],
    ['bigint(20) unsigned', ['number', 'counter']],
    ['float', ['number']],
    ['double', ['number']],
    ['decimal(10,2)', ['number']],
    ['char(2)', ['string', 'text', 'json']],
    ['varchar(255)', ['string', 'text', 'json']],
    ['text', ['string', 'text', 'json']],
    ['mediumtext', ['string', 'text', 'json']],
    ['longtext', ['string', 'text', 'json']],
    ['json', ['json', 'string', 'text']],
    ['tinyint(1)', ['boolean']],
    ['enum(\'a\',\'b\')', ['string']],
    ['set(\'a\')', ['string']],
    ['date', ['string']],
    ['datetime(3)', ['string']],
    ['timestamp', ['string']],
    ['time', ['string']],
    ['year(4)', ['string']],
  ],
}

const REFUSED: Record<DialectName, string[]> = {
  sqlite: ['BLOB', ''],
  postgres: ['bytea', '_int4', 'point', 'tsvector', 'money'],
  mysql: ['blob', 'longblob', 'binary(16)', 'varbinary(20)', 'bit(1)', 'geometry'],
}

describe.each(Object.keys(SUPPORTED) as DialectName[])('type mapping: %s', (dialect) => {
  it.each(SUPPORTED[dialect])('SQL %s mirrors as %j', (sqlType, kinds) => {
    expect(kindsForSqlType(dialect, sqlType)).toEqual(kinds)
  })

  it.each(REFUSED[dialect])('SQL %j is refused', (sqlType) => {
    expect(kindsForSqlType(dialect, sqlType)).toBeNull()
  })

  it.each([...COLUMN_KINDS])('Shoal %s gets a SQL type that mirrors back as the same kind', (kind) => {
    const sqlType = sqlTypeForKind(dialect, kind, false)
    // PostgreSQL is read by udt_name (e.g. double precision → float8); the rest by declared type.
    const read = dialect === 'postgres' ? { text: 'text', 'double precision': 'float8', boolean: 'bool', jsonb: 'jsonb', bigint: 'int8' }[sqlType]! : dialect === 'mysql' && sqlType === 'BOOLEAN' ? 'tinyint(1)' : sqlType
    expect(kindsForSqlType(dialect, read)).toContain(kind)
  })

  it('a derived table gets the columns engine, or yjs when a column is declared text (and the engine given, when one is)', () => {
    const text = dialect === 'postgres' ? 'text' : 'TEXT'
    const sql = [
      { name: 'id', type: text, primaryKey: true },
      { name: 'note', type: text, primaryKey: false },
    ]
    const plan = (input: Record<string, unknown>) => planMirror(dialect, parseBridgeConfig({ database: 'sqlite:x.db', tables: [input] }, 'peer.json').tables[0]!, sql, null)
    expect(plan({ table: 'stock' }).schema.engine).toBe('columns')
    expect(plan({ table: 'stock', text: ['note'] }).schema.engine).toBe('yjs')
    expect(plan({ table: 'stock', engine: 'automerge' }).schema.engine).toBe('automerge')
  })

  it('a refused type names table and column at start', () => {
    const config = parseBridgeConfig({ database: 'sqlite:x.db', tables: ['stock'] }, 'peer.json').tables[0]!
    const bad = REFUSED[dialect][0]!
    expect(() => planMirror(dialect, config, [{ name: 'id', type: dialect === 'postgres' ? 'text' : 'TEXT', primaryKey: true }, { name: 'photo', type: bad, primaryKey: false }], null)).toThrow(
      new RegExp(`SQL table 'stock', column 'photo': type '${bad}' has no Shoal column kind`),
    )
    try {
      planMirror(dialect, config, [{ name: 'id', type: 'text', primaryKey: true }, { name: 'photo', type: bad, primaryKey: false }], null)
    } catch (error) {
      expect(error).toBeInstanceOf(SqlTypeError)
      expect((error as SqlTypeError).column).toBe('photo')
    }
  })
})

describe('values across the bridge', () => {
  it('reads SQL renderings into Shoal values of each kind', () => {
    expect(fromSqlValue('number', '12.50', 'c', false)).toBe(12.5)
    expect(fromSqlValue('number', true, 'c', false)).toBe(1)
    expect(fromSqlValue('counter', '42', 'c', false)).toBe(42)
    expect(fromSqlValue('counter', null, 'c', false)).toBe(0)
    expect(fromSqlValue('text', null, 'c', false)).toBe('')
    expect(fromSqlValue('string', 7, 'c', false)).toBe('7')
    expect(fromSqlValue('boolean', 1, 'c', false)).toBe(true)
    expect(fromSqlValue('boolean', 0, 'c', false)).toBe(false)
    expect(fromSqlValue('boolean', 't', 'c', false)).toBe(true)
    expect(fromSqlValue('json', '{"a":[1,2]}', 'c', true)).toEqual({ a: [1, 2] })
    expect(fromSqlValue('json', '{"a":1}', 'c', false)).toBe('{"a":1}')
    expect(fromSqlValue('json', { a: 1 }, 'c', false)).toEqual({ a: 1 })
  })

  it('refuses values that do not fit, naming the column', () => {
    expect(() => fromSqlValue('number', 'abc', "table 't', column 'price'", false)).toThrow(SqlValueError)
    expect(() => fromSqlValue('counter', 1.5, "column 'qty'", false)).toThrow(/column 'qty'.*not an integer/)
    expect(() => fromSqlValue('boolean', 'maybe', 'c', false)).toThrow(SqlValueError)
    expect(() => fromSqlValue('json', '{nope', "column 'tags'", true)).toThrow(/column 'tags'.*not valid JSON/)
  })

  it('binds Shoal values as each driver expects', () => {
    expect(toSqlValue('postgres', 'boolean', true)).toBe(true)
    expect(toSqlValue('sqlite', 'boolean', true)).toBe(1)
    expect(toSqlValue('mysql', 'boolean', false)).toBe(0)
    expect(toSqlValue('postgres', 'json', [1, { a: 2 }])).toBe('[1,{"a":2}]')
    expect(toSqlValue('sqlite', 'counter', null)).toBe(0)
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}')
  })
})

describe('bridge config', () => {
  it('reads databases and table entries with defaults', () => {
    const c = parseBridgeConfig({ database: 'sqlite:data/till.db', tables: ['sales', { table: 'stock', sql: 'inventory', counters: ['qty'], partitionBy: 'store' }] }, 'peers/store-1.json')
    expect(c.database).toEqual({ dialect: 'sqlite', path: 'data/till.db' })
    expect(c.tables).toEqual([
      { table: 'sales', sql: 'sales', counters: [], text: [], json: [], partitionBy: null, engine: null },
      { table: 'stock', sql: 'inventory', counters: ['qty'], text: [], json: [], partitionBy: 'store', engine: null },
    ])
    expect(parseBridgeConfig({ database: 'postgresql://u:secret@127.0.0.1:5432/hq', tables: ['a'] }, 'x').database.dialect).toBe('postgres')
    expect(parseBridgeConfig({ database: 'mariadb://root@127.0.0.1/shop', tables: ['a'] }, 'x').database.dialect).toBe('mysql')
  })

  it.each([
    [{ tables: ['a'] }, /'database' must be/],
    [{ database: 'oracle://x/y', tables: ['a'] }, /protocol 'oracle:' is not supported/],
    [{ database: 'postgres://127.0.0.1:5432', tables: ['a'] }, /must name the database/],
    [{ database: 'sqlite:', tables: ['a'] }, /needs a file path/],
    [{ database: 'sqlite:x.db', tables: [] }, /'tables' must list/],
    [{ database: 'sqlite:x.db', tables: ['a', 'a'] }, /mirrored twice/],
    [{ database: 'sqlite:x.db', tables: [{ table: 'a', sql: 'shoal_capture' }] }, /keeps for its own tables/],
    [{ database: 'sqlite:x.db', tables: [{ table: 'a', sql: 'a; drop table x' }] }, /not a plain SQL identifier/],
    [{ database: 'sqlite:x.db', tables: ['a'], pollMs: 1 }, /'pollMs' must be an integer from 10/],
    [{ database: 'sqlite:x.db', tables: ['a'], nope: 1 }, /unknown field 'nope'/],
  ])('refuses %j', (input, message) => {
    expect(() => parseBridgeConfig(input, 'peer.json')).toThrow(BridgeConfigError)
    expect(() => parseBridgeConfig(input, 'peer.json')).toThrow(message)
  })
})

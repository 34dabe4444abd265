import { readFile } from 'node:fs/promises'
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { CONFIG_SCHEMA_PATH, configJsonSchema } from '../scripts/config-schema.js'
import { ConfigError, loadConfig, parseConfig } from '../src/config.js'

function parseConfigError(input: unknown): string {
  try {
    parseConfig(input, 'x.json')
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return (error as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('peer config', () => {
  it('loads every shipped peer config', async () => {
    for (const name of ['hq', 'store-1', 'store-2']) {
      const config = await loadConfig(`peers/${name}.json`)
      expect(config.name).toBe(name)
      expect(config.tables.map((t) => t.name)).toEqual(['catalog', 'stock', 'sales'])
    }
  })

  it('fills defaults and rejects bad fields by name', () => {
    expect(parseConfig({}, 'x.json')).toEqual({ name: null, data: 'data', tables: [], listen: ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws'], bootstrap: [], mdns: true, deflate: true, carries: {}, http: '127.0.0.1:0', httpHosts: [], httpOrigins: [], metricsPublic: false, relay: false, ui: false, mesh: null, open: false, bridge: null })
    expect(() => parseConfig({ listen: '/ip4/1' }, 'x.json')).toThrow(/'listen' must be an array/)
    expect(() => parseConfig({ mdns: 'yes' }, 'x.json')).toThrow(/'mdns' must be true or false/)
    expect(() => parseConfig({ open: true, ui: true, http: false }, 'x.json')).toThrow(/the app is served by the HTTP API/)
    expect(() => parseConfig({ carries: { stock: 7 } }, 'x.json')).toThrow(/'carries\.stock' must be an array of partition values/)
    expect(() => parseConfig({ carries: [] }, 'x.json')).toThrow(/'carries' must be an object of table → \[partitions\]/)
    expect(() => parseConfig([], 'x.json')).toThrow(/x.json: the config must be a JSON object/)
    expect(() => parseConfig({ name: '' }, 'x.json')).toThrow(ConfigError)
    expect(() => parseConfig({ tables: {} }, 'x.json')).toThrow(/'tables' must be an array/)
    const t = { name: 't', primaryKey: 'id', columns: { id: 'string' } }
    expect(() => parseConfig({ tables: [t, t] }, 'x.json')).toThrow(/x\.json: 'tables' defines table 't' twice/)
    expect(() => parseConfig({ tables: [{ ...t, primaryKey: 'nope' }] }, 'x.json')).toThrow(/x\.json: 'tables\[0\]\.primaryKey' names "nope", which is not among the columns/)
  })

  it('refuses unknown fields with the list of allowed ones, and takes "$schema" for editors', () => {
    expect(() => parseConfig({ datta: 'x' }, 'x.json')).toThrow(
      /^x\.json: 'datta' is not a known field \(allowed: \$schema, name, data, tables, listen, bootstrap, mdns, deflate, carries, http, httpHosts, httpOrigins, metricsPublic, relay, ui, mesh, open, bridge\)$/,
    )
    expect(() => parseConfig({ tables: [{ name: 't', primaryKey: 'id', columns: { id: 'string' }, primarykey: 'id' }] }, 'x.json')).toThrow(
      /'tables\[0\]\.primarykey' is not a known field \(allowed: name, primaryKey, partitionBy, engine, columns\)/,
    )
    const config = parseConfig({ $schema: './shoal-config.schema.json', name: 'hq' }, 'x.json')
    expect(config.name).toBe('hq')
    expect(config).not.toHaveProperty('$schema')
  })

  it('names the path of a bad value deep inside, and cuts long values short', () => {
    const table = (columns: unknown) => ({ tables: [{ name: 't', primaryKey: 'id', columns }] })
    expect(() => parseConfig(table({ id: 'string', qty: 'float' }), 'peers/hq.json')).toThrow(
      /^peers\/hq\.json: 'tables\[0\]\.columns\.qty' must be one of string, number, boolean, json, counter, text \(got "float"\)$/,
    )
    // valibot's record() would drop these keys silently; they are refused instead.
    expect(() => parseConfig(table(JSON.parse('{"id": "string", "constructor": "string"}')), 'x.json')).toThrow(/'tables\[0\]\.columns' must not use __proto__/)
    expect(() => parseConfig(table([]), 'x.json')).toThrow(/'tables\[0\]\.columns' must be an object of column name → kind/)
    const long = parseConfigError({ data: 'x', name: 7, tables: 'y'.repeat(10_000) })
    expect(long).toMatch(/'name' must be a non-empty string/)
    const huge = parseConfigError({ http: 'z'.repeat(10_000) })
    expect(huge.length).toBeLessThan(200)
    expect(huge).toMatch(/\(got "zzz+…\)$/)
  })

  it('takes the HTTP API address as HOST:PORT or false', () => {
    expect(parseConfig({ http: '127.0.0.1:7001' }, 'x.json').http).toBe('127.0.0.1:7001')
    expect(parseConfig({ http: false }, 'x.json').http).toBeNull()
    expect(() => parseConfig({ http: 'localhost' }, 'x.json')).toThrow(/'http' must be HOST:PORT, e.g. 127.0.0.1:7001 \(got "localhost"\)/)
    expect(() => parseConfig({ http: '127.0.0.1:99999' }, 'x.json')).toThrow(/HOST:PORT/)
    expect(() => parseConfig({ http: 7001 }, 'x.json')).toThrow(/'http' must be "HOST:PORT" or false/)
  })

  it('takes the HTTP API access rules: extra Host names, allowed origins, public metrics', () => {
    const config = parseConfig({ httpHosts: ['shoal.local:7001', '[fe80::1]:7001'], httpOrigins: ['https://app.example', 'HTTP://LocalHost:5173/', 'https://app.example:443'], metricsPublic: true }, 'x.json')
    expect(config.httpHosts).toEqual(['shoal.local:7001', '[fe80::1]:7001'])
    expect(config.httpOrigins).toEqual(['https://app.example', 'http://localhost:5173', 'https://app.example'])
    expect(config.metricsPublic).toBe(true)
    expect(() => parseConfig({ httpHosts: 'shoal.local:7001' }, 'x.json')).toThrow(/'httpHosts' must be an array of "name:port" strings/)
    expect(() => parseConfig({ httpHosts: ['shoal.local'] }, 'x.json')).toThrow(/^x\.json: 'httpHosts\[0\]' must be HOST:PORT, e\.g\. 127\.0\.0\.1:7001 \(got "shoal\.local"\)$/)
    expect(() => parseConfig({ httpOrigins: ['app.example'] }, 'x.json')).toThrow(/^x\.json: 'httpOrigins\[0\]' must be a web origin, http\(s\):\/\/host\[:port\] with no path, e\.g\. https:\/\/app\.example \(got "app\.example"\)$/)
    expect(() => parseConfig({ httpOrigins: 'https://app.example' }, 'x.json')).toThrow(/'httpOrigins' must be an array of web origins/)
    for (const bad of ['https://app.example/path', 'https://app.example?x=1', 'https://user@app.example', 'null', 'file:///tmp', 'https://app.example#top']) {
      expect(() => parseConfig({ httpOrigins: [bad] }, 'x.json')).toThrow(/must be a web origin/)
    }
    expect(() => parseConfig({ metricsPublic: 'yes' }, 'x.json')).toThrow(/'metricsPublic' must be true or false/)
  })

  it('ships a retail mesh: HQ carries everything, each store its own partitions', async () => {
    expect((await loadConfig('peers/hq.json')).carries).toEqual({})
    expect((await loadConfig('peers/store-1.json')).carries).toEqual({ stock: ['1'], sales: ['1'] })
    expect((await loadConfig('peers/store-2.json')).carries).toEqual({ stock: ['2'], sales: ['2'] })
  })
})

describe('the config JSON Schema (peers/shoal-config.schema.json)', () => {
  it('is the one `npm run schema` writes from the valibot schema', async () => {
    const committed = await readFile(CONFIG_SCHEMA_PATH, 'utf8')
    expect(committed, 'peers/shoal-config.schema.json is stale: run `npm run schema` and commit it').toBe(configJsonSchema())
  })

  it('accepts every shipped config, which names it, and refuses what parseConfig refuses by shape', async () => {
    const validate = new Ajv({ strict: true, allErrors: true }).compile(JSON.parse(configJsonSchema()) as object)
    for (const name of ['hq', 'store-1', 'store-2']) {
      const config = JSON.parse(await readFile(`peers/${name}.json`, 'utf8')) as Record<string, unknown>
      expect(config.$schema).toBe('./shoal-config.schema.json')
      expect(validate(config), JSON.stringify(validate.errors)).toBe(true)
    }
    const bad: unknown[] = [
      { datta: 'x' },
      { http: 7001 },
      { http: 'localhost' },
      { mdns: 'yes' },
      { tables: [{ name: '1t', primaryKey: 'id', columns: { id: 'string' } }] },
      { tables: [{ name: 't', primaryKey: 'id', columns: { id: 'strin' } }] },
      { tables: [{ name: 't', columns: { id: 'string' } }] },
      { carries: { stock: [1] } },
      { mesh: 5 },
      { mesh: { dir: 'mesh', create: { authority: 'a', rules: 'r.json' } } },
      { mesh: { dir: 'mesh', create: { authority: 'a', rules: 'r.json', group: 'hq', days: 0 } } },
      { open: 'yes' },
    ]
    for (const input of bad) {
      expect(validate(input), JSON.stringify(input)).toBe(false)
      expect(() => parseConfig(input, 'x.json')).toThrow(ConfigError)
    }
  })
})

describe('peer config: mesh and open', () => {
  it('takes a member folder, or a member folder with what creates the mesh, or open: true, never both', () => {
    expect(parseConfig({ mesh: 'mesh' }, 'x.json').mesh).toBe('mesh')
    expect(parseConfig({ mesh: { dir: 'mesh', create: { authority: 'authority', rules: 'peers/rules.json', group: 'hq' } } }, 'x.json').mesh).toEqual({
      dir: 'mesh',
      create: { authority: 'authority', rules: 'peers/rules.json', group: 'hq', partitions: [], days: 365 },
    })
    expect(parseConfig({ open: true }, 'x.json').open).toBe(true)
    expect(() => parseConfig({ open: true, mesh: 'mesh' }, 'x.json')).toThrow(/x\.json: the config names both "mesh" and "open": true/)
    expect(() => parseConfig({ mesh: { dir: 'mesh', create: { authority: 'a', rules: 'r.json', group: '1x' } } }, 'x.json')).toThrow(/'mesh\.create\.group' must be a group name/)
    expect(() => parseConfig({ mesh: { dir: 'mesh', create: { authority: 'a', rules: 'r.json', group: 'hq', days: 0 } } }, 'x.json')).toThrow(/'mesh\.create\.days' must be an integer from 1 to 3650/)
    expect(() => parseConfig({ mesh: { dir: 'mesh', creat: {} } }, 'x.json')).toThrow(/'mesh\.creat' is not a known field \(allowed: dir, create\)/)
    expect(() => parseConfig({ open: 'yes' }, 'x.json')).toThrow(/'open' must be true or false/)
  })

  it('ships the example peers in a private mesh: hq creates it, the stores name their member folders', async () => {
    const hq = await loadConfig('peers/hq.json')
    expect(hq.open).toBe(false)
    expect(hq.mesh).toMatchObject({ dir: 'mesh', create: { authority: 'authority', rules: 'peers/rules.json', group: 'hq' } })
    for (const store of ['store-1', 'store-2']) expect((await loadConfig(`peers/${store}.json`)).mesh).toBe('mesh')
  })
})

describe('peer config: bridge', () => {
  it('takes a bridge for the SQL bridge to check at start, and refuses a malformed one by name', () => {
    expect(parseConfig({ bridge: { database: 'sqlite:till.db', tables: ['sales'] } }, 'x.json').bridge).toEqual({ database: 'sqlite:till.db', tables: ['sales'] })
    expect(() => parseConfig({ bridge: { tables: ['sales'] } }, 'x.json')).toThrow(/x\.json: .*bridge.*database/)
    expect(() => parseConfig({ bridge: 'sqlite:x.db' }, 'x.json')).toThrow(/bridge.*must be an object/)
  })
})

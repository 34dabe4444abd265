import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, parseConfig } from '../src/config.js'

describe('peer config', () => {
  it('loads every shipped peer config', async () => {
    for (const name of ['hq', 'store-1', 'store-2']) {
      const config = await loadConfig(`peers/${name}.json`)
      expect(config.name).toBe(name)
      expect(config.tables.map((t) => t.name)).toEqual(['catalog', 'stock', 'sales'])
    }
  })

  it('fills defaults and rejects bad fields by name', () => {
    expect(parseConfig({}, 'x.json')).toEqual({ name: null, data: 'data', tables: [], listen: ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws'], bootstrap: [], mdns: true, carries: {} })
    expect(() => parseConfig({ listen: '/ip4/1' }, 'x.json')).toThrow(/'listen' must be an array/)
    expect(() => parseConfig({ mdns: 'yes' }, 'x.json')).toThrow(/'mdns' must be true or false/)
    expect(() => parseConfig({ carries: { stock: 7 } }, 'x.json')).toThrow(/carries.stock must be an array/)
    expect(() => parseConfig([], 'x.json')).toThrow(/x.json: the config must be a JSON object/)
    expect(() => parseConfig({ name: '' }, 'x.json')).toThrow(ConfigError)
    expect(() => parseConfig({ tables: {} }, 'x.json')).toThrow(/'tables' must be an array/)
    const t = { name: 't', primaryKey: 'id', columns: { id: 'string' } }
    expect(() => parseConfig({ tables: [t, t] }, 'x.json')).toThrow(/table 't' is defined twice/)
    expect(() => parseConfig({ tables: [{ ...t, primaryKey: 'nope' }] }, 'x.json')).toThrow(/tables\[0\]: table 't': 'primaryKey' names 'nope'/)
  })
})

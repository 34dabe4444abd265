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
    expect(parseConfig({}, 'x.json')).toEqual({ name: null, data: 'data', tables: [], listen: ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws'], bootstrap: [], mdns: true, carries: {}, http: '127.0.0.1:0', httpHosts: [], httpOrigins: [], metricsPublic: false, relay: false })
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

  it('takes the HTTP API address as HOST:PORT or false', () => {
    expect(parseConfig({ http: '127.0.0.1:7001' }, 'x.json').http).toBe('127.0.0.1:7001')
    expect(parseConfig({ http: false }, 'x.json').http).toBeNull()
    expect(() => parseConfig({ http: 'localhost' }, 'x.json')).toThrow(/'http' must be HOST:PORT, e.g. 127.0.0.1:7001 \(got 'localhost'\)/)
    expect(() => parseConfig({ http: '127.0.0.1:99999' }, 'x.json')).toThrow(/HOST:PORT/)
    expect(() => parseConfig({ http: 7001 }, 'x.json')).toThrow(/'http' must be "HOST:PORT" or false/)
  })

  it('takes the HTTP API access rules: extra Host names, allowed origins, public metrics', () => {
    const config = parseConfig({ httpHosts: ['shoal.local:7001', '[fe80::1]:7001'], httpOrigins: ['https://app.example', 'HTTP://LocalHost:5173/', 'https://app.example:443'], metricsPublic: true }, 'x.json')
    expect(config.httpHosts).toEqual(['shoal.local:7001', '[fe80::1]:7001'])
    expect(config.httpOrigins).toEqual(['https://app.example', 'http://localhost:5173', 'https://app.example'])
    expect(config.metricsPublic).toBe(true)
    expect(() => parseConfig({ httpHosts: 'shoal.local:7001' }, 'x.json')).toThrow(/'httpHosts' must be an array of "name:port" strings/)
    expect(() => parseConfig({ httpHosts: ['shoal.local'] }, 'x.json')).toThrow(/x.json: httpHosts\[0\] must be HOST:PORT/)
    expect(() => parseConfig({ httpOrigins: ['app.example'] }, 'x.json')).toThrow(/httpOrigins\[0\] must be a web origin.*got 'app.example'/)
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

import fc from 'fast-check'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml, stringify as toYaml } from 'yaml'
import { BridgeConfigError } from '../../src/bridge/errors.js'
import { parseBridgeConfig } from '../../src/bridge/config.js'
import { ConfigError, parseConfigText } from '../../src/config.js'
import { parseScenario, parseScenarioText, ScenarioError } from '../../src/sim/core/scenario.js'
import type { Rng } from '../../src/sim/core/rng.js'
import type { FuzzTarget, TargetSession, Verdict } from '../harness.js'
import { mutateText, mutateValue } from '../mutate.js'

/*
 * Files a user (or whoever can write to the folder) hands to shoal: peer configs (JSON, through
 * parseConfigText, the text half of loadConfig, and for a config with a SQL bridge the bridge's
 * full check that `shoal start` runs) and simulator scenarios (JSON or YAML, through
 * parseScenarioText and parseScenario, as `shoal sim --scenario` reads them). Seeds: the shipped
 * files and fast-check-built valid documents; mutants at the value level (re-serialised) and at
 * the text level. Documented refusals: ConfigError / BridgeConfigError, ScenarioError.
 */

/** The repository (this file runs from fuzz/targets/ under tsx, or from dist/fuzz/targets/ compiled). */
const root = fileURLToPath(new URL(import.meta.url.includes('/dist/fuzz/') ? '../../..' : '../..', import.meta.url))

function shipped(folder: string, pattern: RegExp): Array<{ name: string; text: string }> {
  return readdirSync(join(root, folder))
    .filter((f) => pattern.test(f) && !f.includes('schema'))
    .sort()
    .map((f) => ({ name: f, text: readFileSync(join(root, folder, f), 'utf8') }))
}

interface TextInput {
  name: string
  text: string
}

function show(input: unknown): string {
  const i = input as TextInput
  return `${i.name} ${JSON.stringify(i.text.length > 600 ? i.text.slice(0, 600) + '…' : i.text)} (${i.text.length} chars)`
}

const columnsArb = fc.dictionary(fc.constantFrom('id', 'store', 'sku', 'qty', 'name', 'note', 'n'), fc.constantFrom('string', 'number', 'boolean', 'json', 'counter', 'text'), { minKeys: 1, maxKeys: 5 })
const tableArb = fc.record({
  name: fc.constantFrom('stock', 'sales', 'catalog', 't1'),
  primaryKey: fc.constantFrom('id', 'sku'),
  engine: fc.constantFrom('yjs', 'automerge'),
  columns: columnsArb,
})

const configArb = fc.record(
  {
    name: fc.option(fc.string({ minLength: 1, maxLength: 10 }), { nil: null }),
    data: fc.constantFrom('data/x', 'data', '/tmp/shoal'),
    listen: fc.array(fc.constantFrom('/ip4/127.0.0.1/tcp/0', '/ip4/0.0.0.0/tcp/4011/ws'), { maxLength: 2 }),
    bootstrap: fc.array(fc.constant('/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp'), { maxLength: 1 }),
    mdns: fc.boolean(),
    carries: fc.dictionary(fc.constantFrom('stock', 'sales'), fc.array(fc.constantFrom('1', '2', ''), { maxLength: 2 })),
    http: fc.constantFrom('127.0.0.1:7001', '[::1]:0', false, 'localhost:65535'),
    httpHosts: fc.array(fc.constantFrom('shoal.local:7001', 'a:1'), { maxLength: 2 }),
    httpOrigins: fc.array(fc.constantFrom('https://app.example', 'http://localhost:5173'), { maxLength: 2 }),
    metricsPublic: fc.boolean(),
    relay: fc.boolean(),
    tables: fc.uniqueArray(tableArb, { selector: (t) => t.name, maxLength: 3 }),
    bridge: fc.option(
      fc.record({
        database: fc.constantFrom('sqlite:data/x.sqlite', 'postgres://shoal@127.0.0.1:5432/shoal', 'mysql://root@127.0.0.1:3306/shoal'),
        tables: fc.array(fc.oneof(fc.constantFrom('stock', 'sales'), fc.record({ table: fc.constantFrom('stock', 'sales'), counters: fc.constant(['qty']) })), { minLength: 1, maxLength: 2 }),
        pollMs: fc.integer({ min: 10, max: 60_000 }),
      }),
      { nil: null },
    ),
  },
  { requiredKeys: [] },
)

const faultArb = fc.oneof(
  fc.record({ kind: fc.constant('partition'), at: fc.nat(10_000), for: fc.option(fc.integer({ min: 1, max: 5000 }), { nil: null }), groups: fc.constant('halves') }),
  fc.record({ kind: fc.constant('isolate'), at: fc.nat(10_000), peer: fc.nat(3) }),
  fc.record({ kind: fc.constant('loss'), at: fc.nat(10_000), rate: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('delay'), minMs: fc.nat(100), maxMs: fc.integer({ min: 100, max: 1000 }) }),
  fc.record({ kind: fc.constant('crash'), at: fc.nat(10_000), for: fc.integer({ min: 1, max: 5000 }), peer: fc.nat(3) }),
  fc.record({ kind: fc.constant('swizzle'), stepMs: fc.integer({ min: 1, max: 1000 }), links: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ kind: fc.constant('ring') }),
  fc.record({ kind: fc.constant('skew'), peer: fc.nat(3), ms: fc.integer({ min: -1000, max: 1000 }) }),
)

const scenarioArb = fc.record(
  {
    name: fc.string({ minLength: 1, maxLength: 10 }),
    mode: fc.constantFrom('model', 'real'),
    seed: fc.nat(),
    peers: fc.integer({ min: 4, max: 20 }),
    durationMs: fc.integer({ min: 10_000, max: 100_000 }),
    settleMs: fc.integer({ min: 1, max: 60_000 }),
    workload: fc.record({ opsPerSecond: fc.integer({ min: 0, max: 100 }), keys: fc.integer({ min: 10, max: 100 }), hotKeys: fc.nat(10), hotFraction: fc.double({ min: 0, max: 1, noNaN: true }), partitions: fc.constant(['1', '2']) }, { requiredKeys: [] }),
    faults: fc.array(faultArb, { maxLength: 4 }),
    carries: fc.array(fc.record({ peers: fc.array(fc.nat(3), { minLength: 1, maxLength: 2 }), tables: fc.constant({ stock: ['1'] }) }), { maxLength: 2 }),
    network: fc.record({ latencyMs: fc.nat(100), jitterMs: fc.nat(100) }),
    gossip: fc.record({ coalesceMs: fc.nat(100), fanout: fc.integer({ min: 1, max: 10 }) }),
    antiEntropy: fc.record({ intervalMs: fc.integer({ min: 1, max: 10_000 }), peersPerRound: fc.integer({ min: 1, max: 4 }), requestTimeoutMs: fc.integer({ min: 1, max: 10_000 }) }),
  },
  { requiredKeys: [] },
)

function textSession(seeds: TextInput[], run: (input: TextInput) => Verdict, vocabulary: readonly string[]): TargetSession {
  const texts = seeds.map((s) => s.text)
  return {
    next(rng: Rng): TextInput {
      const base = rng.pick(seeds)
      const roll = rng.int(0, 99)
      if (roll < 10) return base
      if (roll < 50) {
        // Value level: parse the seed, change nodes, write it out again (as JSON or YAML, as the name says).
        let value: unknown = base.name.endsWith('.json') ? JSON.parse(base.text) : parseYaml(base.text)
        for (let k = rng.int(1, 3); k > 0; k--) value = mutateValue(rng, value, vocabulary)
        try {
          return { name: base.name, text: base.name.endsWith('.json') ? (JSON.stringify(value) ?? 'null') : toYaml(value) }
        } catch {
          return { name: base.name, text: String(value) }
        }
      }
      let text = base.text
      for (let k = rng.int(1, 4); k > 0; k--) text = mutateText(rng, text, texts)
      return { name: base.name, text }
    },
    async run(input: unknown): Promise<Verdict> {
      return run(input as TextInput)
    },
    show,
    async close() {},
  }
}

export const configFiles: FuzzTarget = {
  name: 'config',
  what: 'peer config files (JSON) → parseConfigText (+ parseBridgeConfig when a bridge is set)',
  weight: 30,
  deadlineMs: 5_000,
  async open(setup: Rng): Promise<TargetSession> {
    const seeds: TextInput[] = shipped('peers', /\.json$/).map((f) => ({ name: f.name, text: f.text }))
    for (const c of fc.sample(configArb, { seed: setup.int(0, 2 ** 31 - 1), numRuns: 300 })) seeds.push({ name: 'generated.json', text: JSON.stringify(c, null, 1) })
    const vocabulary = ['stock', 'sales', 'yjs', 'automerge', 'counter', 'text', '127.0.0.1:0', 'sqlite:x', 'tables', 'columns', 'primaryKey']
    return textSession(
      seeds,
      (input) => {
        try {
          const config = parseConfigText(input.text, input.name)
          if (config.bridge !== null) parseBridgeConfig(config.bridge, input.name)
          return 'unchanged'
        } catch (error) {
          if (error instanceof ConfigError || error instanceof BridgeConfigError) return 'refused'
          throw error
        }
      },
      vocabulary,
    )
  },
}

export const scenarioFiles: FuzzTarget = {
  name: 'scenario',
  what: 'simulator scenario files (YAML and JSON) → parseScenarioText + parseScenario',
  weight: 10,
  deadlineMs: 5_000,
  async open(setup: Rng): Promise<TargetSession> {
    const seeds: TextInput[] = shipped('peers/scenarios', /\.ya?ml$/).map((f) => ({ name: f.name, text: f.text }))
    for (const s of fc.sample(scenarioArb, { seed: setup.int(0, 2 ** 31 - 1), numRuns: 300 })) {
      seeds.push(setup.chance(0.5) ? { name: 'generated.json', text: JSON.stringify(s, null, 1) } : { name: 'generated.yaml', text: toYaml(s) })
    }
    const vocabulary = ['partition', 'isolate', 'bridge', 'ring', 'loss', 'crash', 'join', 'skew', 'swizzle', 'halves', 'model', 'real', 'stock', 'peers', 'kind']
    return textSession(
      seeds,
      (input) => {
        try {
          parseScenario(parseScenarioText(input.text, input.name), input.name)
          return 'unchanged'
        } catch (error) {
          if (error instanceof ScenarioError) return 'refused'
          throw error
        }
      },
      vocabulary,
    )
  },
}

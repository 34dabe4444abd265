import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import { ShoalError } from '../errors.js'
import { isPlainObject, validateSchema, type ResolvedSchema } from '../table/schema.js'

/*
 * A simulation scenario: peers, what each carries, workload, fault schedule, seed, duration.
 * Read from JSON or YAML (peers/scenarios/*.yaml) or built from flags; validated with messages
 * naming the bad field. All times are simulation milliseconds from the start of the run.
 */

export class ScenarioError extends ShoalError {
  constructor(message: string) {
    super('SCENARIO_INVALID', message)
  }
}

export type FaultSpec =
  /** Split the peers into groups that cannot reach each other. */
  | { kind: 'partition'; at: number; for: number | null; groups: number[][] }
  /** Cut one peer off from all others. */
  | { kind: 'isolate'; at: number; for: number | null; peer: number }
  /** Two groups that reach each other only through one bridge peer (in both). */
  | { kind: 'bridge'; at: number; for: number | null; groups: [number[], number[]]; via: number }
  /** Each peer reaches only its ring neighbours within a majority window (Jepsen "majorities ring"). */
  | { kind: 'ring'; at: number; for: number | null }
  /** Message loss, duplication or delay on every link (or the listed ones). */
  | { kind: 'loss'; at: number; for: number | null; rate: number; links: Array<[number, number]> | null }
  | { kind: 'duplicate'; at: number; for: number | null; rate: number; links: Array<[number, number]> | null }
  | { kind: 'delay'; at: number; for: number | null; minMs: number; maxMs: number; links: Array<[number, number]> | null }
  /** The peer stops (in-flight work lost, its store kept) and restarts after `for`. */
  | { kind: 'crash'; at: number; for: number | null; peer: number }
  /** The peer is absent until `at`, then joins with an empty store. */
  | { kind: 'join'; at: number; for: null; peer: number }
  /** The peer's clock runs `ms` ahead (negative: behind). */
  | { kind: 'skew'; at: number; for: number | null; peer: number; ms: number }
  /** Cut random links one by one every `stepMs`, then restore them in random order. */
  | { kind: 'swizzle'; at: number; for: number | null; stepMs: number; links: number }

export interface WorkloadSpec {
  /** Operations per second of simulation time, over the whole mesh. */
  opsPerSecond: number
  /** Distinct row keys per table. */
  keys: number
  /** A hot set of this many keys receives `hotFraction` of the operations, so conflicts are frequent. */
  hotKeys: number
  hotFraction: number
  /** Relative weights of operation kinds. */
  mix: { put: number; update: number; increment: number; delete: number; text: number }
  /** Partition values rows are spread over (for partitioned tables). */
  partitions: string[]
}

export interface Scenario {
  name: string
  mode: 'model' | 'real'
  seed: number
  peers: number
  /** Per peer index: table → the only partitions it carries (absent: everything). */
  carries: Array<Record<string, string[]>>
  tables: ResolvedSchema[]
  workload: WorkloadSpec
  /** How long the workload runs. Faults end by then (or at their own `for`); then the network heals. */
  durationMs: number
  /** How long after healing the run waits for convergence before calling it a failure. */
  settleMs: number
  faults: FaultSpec[]
  network: { latencyMs: number; jitterMs: number }
  gossip: { coalesceMs: number; fanout: number }
  antiEntropy: { intervalMs: number; peersPerRound: number; requestTimeoutMs: number }
  sampleMs: number
}

export const DEFAULT_TABLES: ResolvedSchema[] = [
  validateSchema({ name: 'catalog', primaryKey: 'sku', engine: 'yjs', columns: { sku: 'string', name: 'string', price: 'number', description: 'text' } }),
  validateSchema({ name: 'stock', primaryKey: 'id', partitionBy: 'store', engine: 'yjs', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' } }),
  validateSchema({ name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: 'automerge', columns: { id: 'string', store: 'string', sku: 'string', amount: 'number', note: 'text' } }),
]

const DEFAULTS = {
  mode: 'model' as const,
  seed: 1,
  peers: 5,
  durationMs: 20_000,
  settleMs: 60_000,
  sampleMs: 250,
  workload: { opsPerSecond: 40, keys: 60, hotKeys: 6, hotFraction: 0.5, mix: { put: 3, update: 3, increment: 4, delete: 1, text: 2 }, partitions: ['1', '2', '3'] },
  network: { latencyMs: 2, jitterMs: 3 },
  gossip: { coalesceMs: 5, fanout: 6 },
  antiEntropy: { intervalMs: 2_000, peersPerRound: 2, requestTimeoutMs: 2_000 },
}

const TOP_FIELDS = ['name', 'mode', 'seed', 'peers', 'carries', 'tables', 'workload', 'durationMs', 'settleMs', 'faults', 'network', 'gossip', 'antiEntropy', 'sampleMs']

class Reader {
  constructor(readonly source: string) {}

  fail(field: string, message: string): never {
    throw new ScenarioError(`${this.source}: '${field}' ${message}`)
  }

  object(field: string, v: unknown, allowed: readonly string[]): Record<string, unknown> {
    if (!isPlainObject(v)) this.fail(field, 'must be an object')
    for (const k of Object.keys(v)) if (!allowed.includes(k)) this.fail(`${field}.${k}`, `is not a known field (allowed: ${allowed.join(', ')})`)
    return v
  }

  number(field: string, v: unknown, min: number, max: number, integer = true): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      this.fail(field, `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(v)})`)
    }
    return v
  }

  peer(field: string, v: unknown, peers: number): number {
    return this.number(field, v, 0, peers - 1)
  }

  peerList(field: string, v: unknown, peers: number): number[] {
    if (!Array.isArray(v) || v.length === 0) this.fail(field, 'must be a non-empty array of peer indexes')
    return v.map((p, i) => this.peer(`${field}[${i}]`, p, peers))
  }
}

/** Validates a parsed scenario object and fills defaults; errors name the source and field. */
export function parseScenario(input: unknown, source: string): Scenario {
  const r = new Reader(source)
  const o = r.object('(top level)', input ?? {}, TOP_FIELDS)
  const peers = o.peers === undefined ? DEFAULTS.peers : r.number('peers', o.peers, 1, 100_000)
  const mode = o.mode === undefined ? DEFAULTS.mode : o.mode === 'model' || o.mode === 'real' ? o.mode : r.fail('mode', `must be "model" or "real" (got ${JSON.stringify(o.mode)})`)
  const tables = o.tables === undefined ? DEFAULT_TABLES : parseTables(r, o.tables)
  const durationMs = o.durationMs === undefined ? DEFAULTS.durationMs : r.number('durationMs', o.durationMs, 1, 365 * 24 * 3600_000)
  const w = r.object('workload', o.workload ?? {}, ['opsPerSecond', 'keys', 'hotKeys', 'hotFraction', 'mix', 'partitions'])
  const d = DEFAULTS.workload
  const mixIn = r.object('workload.mix', w.mix ?? d.mix, ['put', 'update', 'increment', 'delete', 'text'])
  const mix = { ...Object.fromEntries(Object.keys(d.mix).map((k) => [k, 0])), ...Object.fromEntries(Object.entries(mixIn).map(([k, v]) => [k, r.number(`workload.mix.${k}`, v, 0, 1e6, false)])) } as WorkloadSpec['mix']
  if (Object.values(mix).every((v) => v === 0)) r.fail('workload.mix', 'needs at least one operation kind with a weight above 0')
  const keys = w.keys === undefined ? d.keys : r.number('workload.keys', w.keys, 1, 10_000_000)
  const partitions = w.partitions === undefined ? d.partitions : Array.isArray(w.partitions) && w.partitions.length > 0 && w.partitions.every((p) => typeof p === 'string' && p !== '') ? (w.partitions as string[]) : r.fail('workload.partitions', 'must be a non-empty array of partition values (strings)')
  const workload: WorkloadSpec = {
    opsPerSecond: w.opsPerSecond === undefined ? d.opsPerSecond : r.number('workload.opsPerSecond', w.opsPerSecond, 0, 1_000_000, false),
    keys,
    hotKeys: w.hotKeys === undefined ? Math.min(d.hotKeys, keys) : r.number('workload.hotKeys', w.hotKeys, 0, keys),
    hotFraction: w.hotFraction === undefined ? d.hotFraction : r.number('workload.hotFraction', w.hotFraction, 0, 1, false),
    mix,
    partitions,
  }
  const carries: Array<Record<string, string[]>> = Array.from({ length: peers }, () => ({}))
  if (o.carries !== undefined) {
    const list: unknown[] = Array.isArray(o.carries) ? o.carries : r.fail('carries', 'must be an array of { peers: [indexes], tables: { table: [partitions] } }')
    list.forEach((entry: unknown, i: number) => {
      const e = r.object(`carries[${i}]`, entry, ['peers', 'tables'])
      const ps = r.peerList(`carries[${i}].peers`, e.peers, peers)
      const t = r.object(`carries[${i}].tables`, e.tables, tables.map((x) => x.name))
      for (const [table, list] of Object.entries(t)) {
        if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) r.fail(`carries[${i}].tables.${table}`, 'must be an array of partition values')
        for (const p of ps) carries[p]![table] = list as string[]
      }
    })
  }
  const faults = o.faults === undefined ? [] : parseFaults(r, o.faults, peers, durationMs)
  const n = r.object('network', o.network ?? {}, ['latencyMs', 'jitterMs'])
  const g = r.object('gossip', o.gossip ?? {}, ['coalesceMs', 'fanout'])
  const a = r.object('antiEntropy', o.antiEntropy ?? {}, ['intervalMs', 'peersPerRound', 'requestTimeoutMs'])
  return {
    name: o.name === undefined ? 'unnamed' : typeof o.name === 'string' && o.name !== '' ? o.name : r.fail('name', 'must be a non-empty string'),
    mode,
    seed: o.seed === undefined ? DEFAULTS.seed : r.number('seed', o.seed, 0, 2 ** 31 - 1),
    peers,
    carries,
    tables,
    workload,
    durationMs,
    settleMs: o.settleMs === undefined ? DEFAULTS.settleMs : r.number('settleMs', o.settleMs, 1, 365 * 24 * 3600_000),
    faults,
    network: {
      latencyMs: n.latencyMs === undefined ? DEFAULTS.network.latencyMs : r.number('network.latencyMs', n.latencyMs, 0, 60_000, false),
      jitterMs: n.jitterMs === undefined ? DEFAULTS.network.jitterMs : r.number('network.jitterMs', n.jitterMs, 0, 60_000, false),
    },
    gossip: {
      coalesceMs: g.coalesceMs === undefined ? DEFAULTS.gossip.coalesceMs : r.number('gossip.coalesceMs', g.coalesceMs, 0, 60_000, false),
      fanout: g.fanout === undefined ? DEFAULTS.gossip.fanout : r.number('gossip.fanout', g.fanout, 1, 1000),
    },
    antiEntropy: {
      intervalMs: a.intervalMs === undefined ? DEFAULTS.antiEntropy.intervalMs : r.number('antiEntropy.intervalMs', a.intervalMs, 1, 3600_000),
      peersPerRound: a.peersPerRound === undefined ? DEFAULTS.antiEntropy.peersPerRound : r.number('antiEntropy.peersPerRound', a.peersPerRound, 1, 1000),
      requestTimeoutMs: a.requestTimeoutMs === undefined ? DEFAULTS.antiEntropy.requestTimeoutMs : r.number('antiEntropy.requestTimeoutMs', a.requestTimeoutMs, 1, 3600_000),
    },
    sampleMs: o.sampleMs === undefined ? DEFAULTS.sampleMs : r.number('sampleMs', o.sampleMs, 1, 3600_000),
  }
}

function parseTables(r: Reader, v: unknown): ResolvedSchema[] {
  if (!Array.isArray(v) || v.length === 0) r.fail('tables', 'must be a non-empty array of table schemas')
  return v.map((schema, i) => {
    try {
      return validateSchema(schema)
    } catch (error) {
      return r.fail(`tables[${i}]`, (error as Error).message)
    }
  })
}

const FAULT_FIELDS: Record<FaultSpec['kind'], string[]> = {
  partition: ['groups'],
  isolate: ['peer'],
  bridge: ['groups', 'via'],
  ring: [],
  loss: ['rate', 'links'],
  duplicate: ['rate', 'links'],
  delay: ['minMs', 'maxMs', 'links'],
  crash: ['peer'],
  join: ['peer'],
  skew: ['peer', 'ms'],
  swizzle: ['stepMs', 'links'],
}

function parseFaults(r: Reader, v: unknown, peers: number, durationMs: number): FaultSpec[] {
  if (!Array.isArray(v)) r.fail('faults', 'must be an array of fault events')
  return v.map((raw, i): FaultSpec => {
    const f = `faults[${i}]`
    if (!isPlainObject(raw) || typeof raw.kind !== 'string' || !(raw.kind in FAULT_FIELDS)) {
      r.fail(`${f}.kind`, `must be one of ${Object.keys(FAULT_FIELDS).join(', ')}`)
    }
    const kind = raw.kind as FaultSpec['kind']
    const e = r.object(f, raw, ['kind', 'at', 'for', ...FAULT_FIELDS[kind]])
    const at = e.at === undefined ? 0 : r.number(`${f}.at`, e.at, 0, durationMs)
    const span = e.for === undefined || e.for === null ? null : r.number(`${f}.for`, e.for, 1, 365 * 24 * 3600_000)
    const links = (): Array<[number, number]> | null => {
      if (e.links === undefined || e.links === null) return null
      if (!Array.isArray(e.links)) r.fail(`${f}.links`, 'must be an array of [peer, peer] pairs')
      return e.links.map((l: unknown, j: number) => {
        if (!Array.isArray(l) || l.length !== 2) r.fail(`${f}.links[${j}]`, 'must be a [peer, peer] pair')
        return [r.peer(`${f}.links[${j}][0]`, l[0], peers), r.peer(`${f}.links[${j}][1]`, l[1], peers)]
      })
    }
    const rate = (): number => r.number(`${f}.rate`, e.rate, 0, 1, false)
    switch (kind) {
      case 'partition': {
        // "halves" splits whatever the number of peers (for sweeps over N).
        if (e.groups === 'halves') {
          if (peers < 2) r.fail(`${f}.groups`, '"halves" needs at least 2 peers')
          const half = Math.floor(peers / 2)
          return { kind, at, for: span, groups: [Array.from({ length: half }, (_, i) => i), Array.from({ length: peers - half }, (_, i) => half + i)] }
        }
        if (!Array.isArray(e.groups) || e.groups.length < 2) r.fail(`${f}.groups`, 'must be "halves" or at least two arrays of peer indexes')
        const groups = e.groups.map((g: unknown, j: number) => r.peerList(`${f}.groups[${j}]`, g, peers))
        const seen = new Set<number>()
        for (const p of groups.flat()) {
          if (seen.has(p)) r.fail(`${f}.groups`, `names peer ${p} in two groups`)
          seen.add(p)
        }
        return { kind, at, for: span, groups }
      }
      case 'bridge': {
        if (!Array.isArray(e.groups) || e.groups.length !== 2) r.fail(`${f}.groups`, 'must be exactly two arrays of peer indexes')
        const groups = [r.peerList(`${f}.groups[0]`, e.groups[0], peers), r.peerList(`${f}.groups[1]`, e.groups[1], peers)] as [number[], number[]]
        return { kind, at, for: span, groups, via: r.peer(`${f}.via`, e.via, peers) }
      }
      case 'ring':
        return { kind, at, for: span }
      case 'isolate':
      case 'crash':
        return { kind, at, for: span, peer: r.peer(`${f}.peer`, e.peer, peers) }
      case 'join':
        return { kind, at, for: null, peer: r.peer(`${f}.peer`, e.peer, peers) }
      case 'skew':
        return { kind, at, for: span, peer: r.peer(`${f}.peer`, e.peer, peers), ms: r.number(`${f}.ms`, e.ms, -86_400_000, 86_400_000) }
      case 'loss':
      case 'duplicate':
        return { kind, at, for: span, rate: rate(), links: links() }
      case 'delay': {
        const minMs = r.number(`${f}.minMs`, e.minMs, 0, 600_000, false)
        const maxMs = r.number(`${f}.maxMs`, e.maxMs, minMs, 600_000, false)
        return { kind, at, for: span, minMs, maxMs, links: links() }
      }
      case 'swizzle':
        return { kind, at, for: span, stepMs: r.number(`${f}.stepMs`, e.stepMs ?? 500, 1, 3600_000), links: r.number(`${f}.links`, e.links ?? Math.max(1, Math.floor((peers * (peers - 1)) / 4)), 1, 10_000_000) }
    }
  })
}

/** Reads a scenario file: `.yaml`/`.yml` as YAML, anything else as JSON. */
export async function loadScenario(path: string): Promise<Scenario> {
  return parseScenario(await readScenarioInput(path), path)
}

/** The raw (unvalidated) contents of a scenario file, for callers that override fields before parsing. */
export async function readScenarioInput(path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ScenarioError(`cannot read scenario file '${path}': ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text)
  } catch (error) {
    throw new ScenarioError(`${path}: not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(error as Error).message}`)
  }
  return parsed
}

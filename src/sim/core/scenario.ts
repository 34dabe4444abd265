import { readFile } from 'node:fs/promises'
import * as v from 'valibot'
import { parse as parseYaml } from 'yaml'
import { ShoalError } from '../../errors.js'
import { TABLE_DEFINITION, validateSchema, type ResolvedSchema } from '../../table/schema.js'
import { entriesOf, fields, integerIn, isPlainObject, numberIn, oneOf, parseWith, shown, strictFields } from '../../validation.js'
import { meshSchema, type MeshSpec } from './roles.js'

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
  /**
   * With a `mesh` section: peers that write wherever they carry, also outside their rights (the
   * others write only where the rules let them). Their forbidden writes must stay their own.
   */
  outsideRights: number[]
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
  /** Roles (groups, rules, each peer's group and own partitions); null: an open mesh, anyone writes anything. */
  mesh: MeshSpec | null
}

export type { MeshSpec }

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

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
const YEAR_MS = 365 * DAY_MS
/** Limits of the fields the command line can also set (shoal sim --peers, --seed, --duration). */
export const MAX_PEERS = 100_000
export const MAX_SEED = 2 ** 31 - 1
export const MAX_DURATION_MS = YEAR_MS
/** Per-link delay bounds of a `delay` fault. */
const MAX_DELAY_MS = 600_000
const FAULT_KINDS: ReadonlyArray<FaultSpec['kind']> = ['partition', 'isolate', 'bridge', 'ring', 'loss', 'duplicate', 'delay', 'crash', 'join', 'skew', 'swizzle']

const nonEmptyString = (message: string) => v.pipe(v.string(message), v.nonEmpty(message))
const nonEmptyArray = <T extends v.GenericSchema>(item: T, message: string) => v.pipe(v.array(item, message), v.minLength(1, message))
/** Exactly two items; checked first, or a missing second item would be reported as `[1]` undefined. */
const pair = <T extends v.GenericSchema>(item: T, message: string) =>
  v.pipe(
    v.custom<unknown[]>((x) => Array.isArray(x) && x.length === 2, message),
    v.strictTuple([item, item], message),
  )

/** The fields others are checked against: peer indexes, fault times, carried tables. Validated first. */
const FRAME_FIELDS = {
  peers: v.optional(integerIn(1, MAX_PEERS), DEFAULTS.peers),
  durationMs: v.optional(integerIn(1, MAX_DURATION_MS), DEFAULTS.durationMs),
  tables: v.optional(nonEmptyArray(TABLE_DEFINITION, 'must be a non-empty array of table schemas')),
}
const FRAME = v.pipe(v.custom<Record<string, unknown>>(isPlainObject, 'must be an object'), v.looseObject(FRAME_FIELDS))
type Frame = v.InferOutput<typeof FRAME>

function faultSchema({ peers, durationMs }: Frame) {
  const peer = integerIn(0, peers - 1)
  const peerList = nonEmptyArray(peer, 'must be a non-empty array of peer indexes')
  const links = v.optional(v.nullable(v.array(pair(peer, 'must be a [peer, peer] pair'), 'must be an array of [peer, peer] pairs')), null)
  const fault = <K extends FaultSpec['kind'], E extends v.ObjectEntries>(kind: K, entries: E) =>
    strictFields({ kind: v.literal(kind), at: v.optional(integerIn(0, durationMs), 0), for: v.optional(v.nullable(integerIn(1, YEAR_MS)), null), ...entries })
  const half = Math.floor(peers / 2)
  // "halves" splits whatever the number of peers (for sweeps over N).
  const halves = v.pipe(
    v.literal('halves'),
    v.transform(() => [Array.from({ length: half }, (_, i) => i), Array.from({ length: peers - half }, (_, i) => half + i)]),
    // After the transform: an issue before it would make the union report its generic message.
    v.check(() => peers >= 2, '"halves" needs at least 2 peers'),
  )
  const groupsMessage = 'must be "halves" or at least two arrays of peer indexes'
  const disjoint = v.check(
    (groups: number[][]) => new Set(groups.flat()).size === groups.flat().length,
    (issue) => `names peer ${issue.input.flat().find((p, i, all) => all.indexOf(p) !== i)} in two groups`,
  )
  return v.variant(
    'kind',
    [
      fault('partition', { groups: v.union([halves, v.pipe(v.array(peerList, groupsMessage), v.minLength(2, groupsMessage), disjoint)], groupsMessage) }),
      fault('isolate', { peer }),
      fault('bridge', { groups: pair(peerList, 'must be exactly two arrays of peer indexes'), via: peer }),
      fault('ring', {}),
      fault('loss', { rate: numberIn(0, 1), links }),
      fault('duplicate', { rate: numberIn(0, 1), links }),
      v.pipe(
        fault('delay', { minMs: numberIn(0, MAX_DELAY_MS), maxMs: numberIn(0, MAX_DELAY_MS), links }),
        v.forward(
          v.check((f) => f.maxMs >= f.minMs, (issue) => `must be a number from ${issue.input.minMs} to ${MAX_DELAY_MS} (got ${issue.input.maxMs})`),
          ['maxMs'],
        ),
      ),
      fault('crash', { peer }),
      fault('join', { for: v.optional(v.null('must be null or absent: a peer that joins stays'), null), peer }),
      fault('skew', { peer, ms: integerIn(-DAY_MS, DAY_MS) }),
      fault('swizzle', { stepMs: v.optional(integerIn(1, HOUR_MS), 500), links: v.optional(integerIn(1, 10_000_000), Math.max(1, Math.floor((peers * (peers - 1)) / 4))) }),
    ],
    (issue) => (issue.expected === 'Object' ? `must be a fault event: { kind, at, for, … }` : `must be one of ${FAULT_KINDS.join(', ')} (got ${shown(issue.input)})`),
  )
}

function scenarioSchema(frame: Frame, tables: readonly ResolvedSchema[]) {
  const d = DEFAULTS.workload
  const peer = integerIn(0, frame.peers - 1)
  const weight = v.optional(numberIn(0, 1e6), 0)
  const workload = v.pipe(
    fields({
      opsPerSecond: v.optional(numberIn(0, 1_000_000), d.opsPerSecond),
      keys: v.optional(integerIn(1, 10_000_000), d.keys),
      hotKeys: v.optional(integerIn(0, 10_000_000)),
      hotFraction: v.optional(numberIn(0, 1), d.hotFraction),
      mix: v.optional(
        v.pipe(
          fields({ put: weight, update: weight, increment: weight, delete: weight, text: weight }),
          v.check((mix) => Object.values(mix).some((w) => w > 0), 'needs at least one operation kind with a weight above 0'),
        ),
        d.mix,
      ),
      partitions: v.optional(nonEmptyArray(nonEmptyString('must be a partition value (a non-empty string)'), 'must be a non-empty array of partition values (strings)'), d.partitions),
      outsideRights: v.optional(v.array(peer, 'must be an array of peer indexes'), []),
    }),
    v.forward(v.check((w) => w.hotKeys === undefined || w.hotKeys <= w.keys, (issue) => `must be an integer from 0 to ${issue.input.keys} (got ${issue.input.hotKeys})`), ['hotKeys']),
    v.transform(({ opsPerSecond, keys, hotKeys, hotFraction, mix, partitions, outsideRights }): WorkloadSpec => ({
      opsPerSecond,
      keys,
      hotKeys: hotKeys ?? Math.min(d.hotKeys, keys),
      hotFraction,
      mix,
      partitions,
      outsideRights: [...new Set(outsideRights)],
    })),
  )
  // A record, not an object of the table names: valibot reads object fields with `in`, so a table
  // named like an Object.prototype member (toString) would be found on every object.
  const carried = entriesOf(
    oneOf(tables.map((t) => t.name)),
    v.array(v.string('must be a partition value (a string)'), 'must be an array of partition values'),
    'must be an object of table → [partitions]',
  )
  return fields({
    ...FRAME_FIELDS,
    name: v.optional(nonEmptyString('must be a non-empty string'), 'unnamed'),
    mode: v.optional(v.picklist(['model', 'real'], (issue) => `must be "model" or "real" (got ${shown(issue.input)})`), DEFAULTS.mode),
    seed: v.optional(integerIn(0, MAX_SEED), DEFAULTS.seed),
    carries: v.optional(
      v.array(
        fields({ peers: nonEmptyArray(peer, 'must be a non-empty array of peer indexes'), tables: carried }),
        'must be an array of { peers: [indexes], tables: { table: [partitions] } }',
      ),
      [],
    ),
    workload: v.optional(workload, {}),
    settleMs: v.optional(integerIn(1, YEAR_MS), DEFAULTS.settleMs),
    faults: v.optional(v.array(faultSchema(frame), 'must be an array of fault events'), []),
    network: v.optional(
      fields({ latencyMs: v.optional(numberIn(0, 60_000), DEFAULTS.network.latencyMs), jitterMs: v.optional(numberIn(0, 60_000), DEFAULTS.network.jitterMs) }),
      {},
    ),
    gossip: v.optional(fields({ coalesceMs: v.optional(numberIn(0, 60_000), DEFAULTS.gossip.coalesceMs), fanout: v.optional(integerIn(1, 1000), DEFAULTS.gossip.fanout) }), {}),
    antiEntropy: v.optional(
      fields({
        intervalMs: v.optional(integerIn(1, HOUR_MS), DEFAULTS.antiEntropy.intervalMs),
        peersPerRound: v.optional(integerIn(1, 1000), DEFAULTS.antiEntropy.peersPerRound),
        requestTimeoutMs: v.optional(integerIn(1, HOUR_MS), DEFAULTS.antiEntropy.requestTimeoutMs),
      }),
      {},
    ),
    sampleMs: v.optional(integerIn(1, HOUR_MS), DEFAULTS.sampleMs),
    mesh: v.optional(meshSchema(frame.peers, tables)),
  })
}

/**
 * Validates a parsed scenario object and fills defaults; errors name the source and field. Peer
 * indexes, fault times and carried tables are bounded by `peers`, `durationMs` and `tables`, so
 * those are read first and the rest is checked against a schema built for them.
 */
export function parseScenario(input: unknown, source: string): Scenario {
  const from = { source, what: 'the scenario', error: (message: string) => new ScenarioError(message) }
  const frame = parseWith(FRAME, input ?? {}, from)
  const tables = frame.tables ?? DEFAULT_TABLES
  const s = parseWith(scenarioSchema(frame, tables), input ?? {}, from)
  const carries: Array<Record<string, string[]>> = Array.from({ length: frame.peers }, () => ({}))
  if (s.workload.outsideRights.length > 0 && s.mesh === undefined) {
    throw new ScenarioError(`${source}: 'workload.outsideRights' needs a 'mesh' section (without roles every write is within its rights)`)
  }
  for (const entry of s.carries) {
    for (const [table, partitions] of Object.entries(entry.tables)) for (const p of entry.peers) carries[p]![table] = partitions
  }
  return {
    name: s.name,
    mode: s.mode,
    seed: s.seed,
    peers: frame.peers,
    carries,
    tables,
    workload: s.workload,
    durationMs: frame.durationMs,
    settleMs: s.settleMs,
    faults: s.faults,
    network: s.network,
    gossip: s.gossip,
    antiEntropy: s.antiEntropy,
    sampleMs: s.sampleMs,
    mesh: s.mesh ?? null,
  }
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
  return parseScenarioText(text, path)
}

/** The raw (unvalidated) value of a scenario file's text: YAML when `path` ends in `.yaml`/`.yml`, else JSON. */
export function parseScenarioText(text: string, path: string): unknown {
  const yaml = /\.ya?ml$/i.test(path)
  try {
    return yaml ? parseYaml(text) : JSON.parse(text)
  } catch (error) {
    throw new ScenarioError(`${path}: not valid ${yaml ? 'YAML' : 'JSON'}: ${(error as Error).message}`)
  }
}

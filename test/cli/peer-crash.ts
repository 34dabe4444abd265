import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readApiFile } from '../../src/http/api-file.js'
import { ApiError, ShoalClient } from '../../src/http/client.js'
import { Rng } from '../../src/sim/core/rng.js'
import { runToEnd, shoal, waitForOutput } from '../helpers/cli.js'

/*
 * kill -9 of a whole running peer (`shoal start` as a child process, on 127.0.0.1 with a temp data
 * folder), used by test/cli/kill-peer.test.ts (a few rounds) and `npm run test:crash` (many).
 * Each round: start the peer (on the folder the last round left), check that every write it ever
 * acknowledged is there, let several HTTP clients write concurrently (new rows, counter
 * increments, deletes), SIGKILL the peer after a random number of acknowledged writes, then run
 * `shoal check` on the folder. An acknowledged write is one answered 200: it must survive; a write
 * in flight at the kill may or may not (a counter may hold its increment or not, never more).
 * Waiting is by polling with deadlines (the peer's output, api.json, the exit), never by sleeping.
 */

export const CRASH_TABLES = [
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', seq: 'number' } },
  { name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: 'automerge', columns: { id: 'string', store: 'string', amount: 'number', seq: 'number', units: 'counter' } },
]

const STORES = ['1', '2']
const START_DEADLINE_MS = 90_000

/** What the peer acknowledged, and what was in flight when it died. */
interface Ledger {
  /** Rows whose PUT was acknowledged (and no delete of them since): table/key → values. */
  rows: Map<string, { table: string; key: string; store: string; values: Record<string, unknown> }>
  /** Rows whose delete was acknowledged. */
  deleted: Set<string>
  /** Counter rows: acknowledged increments summed, and what was in flight (may or may not be applied). */
  counters: Map<string, { table: string; key: string; store: string; column: string; acked: number; inFlight: number }>
  /** Writes whose answer never came (the kill): their rows may or may not exist. */
  unknown: Set<string>
}

export interface RoundReport {
  round: number
  /** Acknowledged writes in this round. */
  acknowledged: number
  /** Writes cut off by the kill. */
  inFlight: number
  /** Acknowledged writes (all rounds so far) verified present after the restart. */
  verified: number
  lost: string[]
  check: string
}

export interface CrashRunOptions {
  rounds: number
  seed: number
  clients?: number
  log?: (message: string) => void
}

const id = (table: string, key: string): string => `${table}/${key}`

async function startPeer(config: string, dir: string): Promise<{ child: ChildProcess; client: ShoalClient }> {
  const child = shoal(['start', '--config', config, '--data', dir])
  await waitForOutput(child, /running; press Ctrl-C/, START_DEADLINE_MS)
  // The api.json of this start (a killed peer leaves its own behind).
  const deadline = Date.now() + START_DEADLINE_MS
  for (;;) {
    const api = await readApiFile(dir)
    if (api !== null && api.pid === child.pid && api.token !== null) return { child, client: new ShoalClient(api.url, { token: api.token, timeoutMs: 20_000 }) }
    if (Date.now() > deadline) throw new Error(`no api.json of pid ${child.pid} in ${dir} within ${START_DEADLINE_MS} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))
}

/** Checks every acknowledged write against what the restarted peer serves; returns what is missing. */
async function verify(client: ShoalClient, ledger: Ledger): Promise<{ verified: number; lost: string[] }> {
  const stored = new Map<string, Record<string, unknown>>()
  for (const table of CRASH_TABLES) {
    let after: string | undefined
    for (;;) {
      const page = await client.scan(table.name, { limit: 1000, ...(after === undefined ? {} : { after }) })
      for (const row of page.rows) stored.set(id(table.name, String(row.id)), row)
      if (page.next === null) break
      after = page.next
    }
  }
  const lost: string[] = []
  let verified = 0
  for (const [k, want] of ledger.rows) {
    const got = stored.get(k)
    if (got === undefined && ledger.unknown.has(k)) {
      // Its delete was in flight at the kill and was committed: it counts as deleted from now on.
      ledger.rows.delete(k)
      ledger.deleted.add(k)
      continue
    }
    const same = got !== undefined && Object.entries(want.values).every(([c, v]) => got[c] === v)
    if (same) verified++
    else lost.push(`${k}: acknowledged ${JSON.stringify(want.values)}, found ${JSON.stringify(got ?? null)}`)
  }
  for (const k of ledger.deleted) {
    if (stored.has(k)) lost.push(`${k}: delete acknowledged, row still there`)
    else verified++
  }
  // Whatever was in flight is settled one way or the other now.
  ledger.unknown.clear()
  for (const [k, c] of ledger.counters) {
    const qty = stored.get(k)?.[c.column]
    if (typeof qty === 'number' && qty >= c.acked && qty <= c.acked + c.inFlight) {
      verified++
      // What the row holds is now the acknowledged baseline; nothing is in flight any more.
      c.acked = qty
      c.inFlight = 0
    } else lost.push(`${k}: ${c.acked} acknowledged (+${c.inFlight} in flight), found ${JSON.stringify(qty ?? null)}`)
  }
  return { verified, lost }
}

/** One client writing until the peer dies (or `stop()`); records each acknowledged write in the ledger. */
async function writeUntilDown(client: ShoalClient, ledger: Ledger, rng: Rng, name: string, round: number, acked: { n: number }, killAt: number, kill: () => void): Promise<number> {
  let seq = 0
  let inFlight = 0
  for (;;) {
    seq++
    const table = rng.pick(CRASH_TABLES)
    const store = rng.pick(STORES)
    const roll = rng.int(0, 99)
    const own = [...ledger.rows.values()].filter((r) => r.key.startsWith(`${name}-`))
    try {
      if (roll < 60 || own.length === 0) {
        const key = `${name}-r${round}-${seq}`
        const values = table.name === 'stock' ? { store, sku: `S${seq}`, seq } : { store, amount: seq * 1.5, seq }
        ledger.unknown.add(id(table.name, key))
        await client.put(table.name, key, values, { partition: store })
        ledger.unknown.delete(id(table.name, key))
        ledger.rows.set(id(table.name, key), { table: table.name, key, store, values })
      } else if (roll < 85) {
        const key = `${name}-counter`
        const column = table.name === 'stock' ? 'qty' : 'units'
        const k = id(table.name, key)
        const by = rng.int(1, 9)
        let c = ledger.counters.get(k)
        if (c === undefined) {
          // The row is created by its first put (a counter starts at 0), acknowledged before counting.
          // Always in the same partition: a put cut off by a kill may still have been stored, and
          // the next round's put of the row must not name another partition.
          const home = STORES[0]!
          await client.put(table.name, key, { store: home }, { partition: home })
          c = { table: table.name, key, store: home, column, acked: 0, inFlight: 0 }
          ledger.counters.set(k, c)
        }
        c.inFlight += by
        await client.increment(table.name, key, column, by, { partition: c.store })
        c.inFlight -= by
        c.acked += by
      } else {
        const victim = rng.pick(own)
        const k = id(victim.table, victim.key)
        ledger.unknown.add(k)
        await client.delete(victim.table, victim.key, { partition: victim.store })
        ledger.rows.delete(k)
        ledger.unknown.delete(k)
        ledger.deleted.add(k)
      }
      acked.n++
      if (acked.n >= killAt) kill()
    } catch (error) {
      if (error instanceof ApiError) throw error
      // The peer is gone (connection refused or reset): this write's fate is unknown.
      inFlight++
      return inFlight
    }
  }
}

/** Runs `rounds` kill -9 rounds on one data folder; throws on the first lost write or failed check. */
export async function crashRounds(options: CrashRunOptions): Promise<RoundReport[]> {
  const log = options.log ?? (() => undefined)
  const rng = new Rng(options.seed)
  const work = await mkdtemp(join(tmpdir(), 'shoal-kill-'))
  const dir = join(work, 'data')
  const config = join(work, 'peer.json')
  await writeFile(config, JSON.stringify({ name: 'crash', tables: CRASH_TABLES, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, http: '127.0.0.1:0', open: true }))
  const ledger: Ledger = { rows: new Map(), deleted: new Set(), counters: new Map(), unknown: new Set() }
  const reports: RoundReport[] = []
  let child: ChildProcess | null = null
  try {
    for (let round = 1; round <= options.rounds; round++) {
      const started = await startPeer(config, dir)
      child = started.child
      const before = await verify(started.client, ledger)
      if (before.lost.length > 0) throw new Error(`round ${round}: after the restart, ${before.lost.length} acknowledged write(s) are missing:\n${before.lost.slice(0, 20).join('\n')}`)
      // A random moment: after this many acknowledged writes (over all clients) the peer is killed.
      const killAt = rng.int(5, 150)
      const acked = { n: 0 }
      const victim: ChildProcess = child
      const kill = (): void => {
        if (victim.exitCode === null && victim.signalCode === null) victim.kill('SIGKILL')
      }
      const clients = options.clients ?? 4
      const cut = await Promise.all(Array.from({ length: clients }, (_, c) => writeUntilDown(started.client, ledger, rng.fork(`r${round}c${c}`), `c${c}`, round, acked, killAt, kill)))
      await exited(victim)
      child = null
      if (victim.signalCode !== 'SIGKILL') throw new Error(`round ${round}: the peer exited with ${victim.exitCode} / ${victim.signalCode} instead of being killed`)
      const checked = await runToEnd(['check', '--data', dir])
      if (checked.code !== 0) throw new Error(`round ${round}: shoal check failed after the kill (exit ${checked.code}):\n${checked.stdout}\n${checked.stderr}`)
      const report: RoundReport = { round, acknowledged: acked.n, inFlight: cut.reduce((s, n) => s + n, 0), verified: before.verified, lost: [], check: checked.stdout.trim() }
      reports.push(report)
      log(`round ${round}: killed after ${report.acknowledged} acknowledged writes (${report.inFlight} in flight); ${report.verified} earlier writes verified at restart; check: ${report.check}`)
    }
    // The last round's writes, verified after one more restart, then a clean stop.
    const final = await startPeer(config, dir)
    child = final.child
    const after = await verify(final.client, ledger)
    if (after.lost.length > 0) throw new Error(`after the last round, ${after.lost.length} acknowledged write(s) are missing:\n${after.lost.slice(0, 20).join('\n')}`)
    const stopping = waitForOutput(final.child, /stopped cleanly/, START_DEADLINE_MS)
    final.child.kill('SIGTERM')
    await stopping
    child = null
    const checked = await runToEnd(['check', '--data', dir])
    if (checked.code !== 0) throw new Error(`shoal check failed after the clean stop:\n${checked.stdout}\n${checked.stderr}`)
    reports.push({ round: options.rounds + 1, acknowledged: 0, inFlight: 0, verified: after.verified, lost: [], check: checked.stdout.trim() })
    log(`final restart: ${after.verified} acknowledged writes verified; clean stop; check: ${checked.stdout.trim()}`)
    return reports
  } finally {
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited(child)
    }
    await rm(work, { recursive: true, force: true })
  }
}

/* A child process of the peers benchmark: one system, one group of workloads, fresh peers; prints its result for the parent. */
import { pathToFileURL } from 'node:url'
import { cpuMark, foreignCores } from '../lib/cpu.js'
import { sleep } from '../lib/poll.js'
import { removeDir, tempDir } from '../lib/temp.js'
import { installWireCounter, wireTotal } from '../lib/wire.js'
import type { SystemAdapter } from './adapter.js'
import { N, SYSTEMS, type Group } from './config.js'
import { DnfError, progress, type ChildResult } from './measure.js'
import { systemModule } from './systems.js'
import { runGroup } from './workloads.js'

async function loadAdapter(system: string): Promise<SystemAdapter> {
  if (!SYSTEMS.includes(system)) throw new Error(`unknown system '${system}' (${SYSTEMS.join(', ')})`)
  const mod = (await import(pathToFileURL(systemModule(system)).href)) as { createAdapter?: () => SystemAdapter }
  if (typeof mod.createAdapter !== 'function') throw new Error(`the adapter of ${system} (${systemModule(system)}) exports no createAdapter()`)
  return mod.createAdapter()
}

export async function child(system: string, group: Group): Promise<void> {
  installWireCounter()
  const mark = cpuMark()
  const adapter = await loadAdapter(system)
  const dir = await tempDir('peers', system)
  const workloads: ChildResult['workloads'] = {}
  let startMs = NaN
  let idleRate = NaN
  try {
    const s0 = performance.now()
    await adapter.start(group === 'five' ? 5 : 2, dir)
    startMs = performance.now() - s0
    progress(`started ${startMs.toFixed(0)}`)
    const idle0 = wireTotal()
    await sleep(1000)
    idleRate = wireTotal() - idle0
    await runGroup(adapter, group, workloads)
  } catch (error) {
    if (!(error instanceof DnfError)) throw error
  } finally {
    await Promise.race([adapter.stop().catch((e: unknown) => process.stderr.write(`[${system}] stop failed: ${String(e)}\n`)), sleep(10_000)])
    // Some systems (GUN) still flush to disk after stop(): retry, and never fail a run over cleanup.
    await removeDir(dir).catch((e: unknown) => process.stderr.write(`[${system}] could not remove ${dir}: ${String(e)}\n`))
  }
  const result: ChildResult = {
    system: adapter.name,
    group,
    ...(adapter.topology === undefined ? {} : { topology: adapter.topology }),
    ...(adapter.notes === undefined ? {} : { notes: adapter.notes }),
    rows: N,
    start_ms: startMs,
    idle_wire_bytes_per_s: idleRate,
    workloads,
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
    foreign_cores: foreignCores(mark),
  }
  process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`)
}

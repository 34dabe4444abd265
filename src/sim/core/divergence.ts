import type { RowState } from '../../table/row.js'
import type { PeerFinal } from './checker.js'
import type { SimSummary } from './summary.js'

/*
 * The divergence series of a run: per peer, per sample, how many rows differ from the state the
 * run converged to. Rows are compared by fingerprint; during the run each mode records which rows
 * changed where (with the new fingerprint), and the series is replayed from those changes at the end,
 * once the final state is known.
 */

/** A row state as the divergence series compares it (life left out: a real peer's change events do not carry it). */
export function fingerprint(alive: boolean, values: Readonly<Record<string, unknown>> | null): string {
  return JSON.stringify({ alive, values: alive ? (values ?? {}) : {} })
}

export function stateFingerprint(state: RowState | null): string {
  return state === null ? '' : fingerprint(state.alive, state.values)
}

/** (table, partition, key) of a row id made by rowId(); keys may hold '/'. */
export function splitRowId(id: string): [string, string, string] {
  const a = id.indexOf('/')
  const b = id.indexOf('/', a + 1)
  return [id.slice(0, a), id.slice(a + 1, b), id.slice(b + 1)]
}

/** [peer, row id, fingerprint after the change] */
export type RowChange = [number, string, string]

export interface Samples {
  t: number[]
  /** Per sample, per peer: running? */
  up: boolean[][]
  /** Per sample: the rows that changed since the previous one, where. */
  changes: RowChange[][]
  messagesPerSec: number[]
  bytesPerSec: number[]
}

export function emptySamples(): Samples {
  return { t: [], up: [], changes: [], messagesPerSec: [], bytesPerSec: [] }
}

/**
 * Rows differing from the final state, per peer per sample. The final state of a row is what its
 * live carriers converged to, taken from the first live carrier that `reference` accepts (a peer
 * that wrote outside its rights keeps a copy of its own, which is not the mesh's).
 */
export function divergenceSeries(
  intervalMs: number,
  samples: Samples,
  finals: readonly PeerFinal[],
  reference: (peer: number, table: string, partition: string) => boolean = () => true,
): SimSummary['series'] {
  const final = new Map<string, string>()
  for (const f of finals) {
    if (!f.up) continue
    for (const [id, state] of f.rows) {
      const [table, partition] = splitRowId(id)
      if (!final.has(id) && reference(f.peer, table, partition)) final.set(id, stateFingerprint(state))
    }
  }
  const divergence = finals.map((f) => {
    const current = new Map<string, string>()
    // Rows this peer should end with; absent ones count as differing until they arrive.
    let differing = [...final.keys()].filter((id) => {
      const [table, partition] = splitRowId(id)
      return f.carries(table, partition)
    }).length
    return samples.t.map((_, s) => {
      for (const [peer, id, fp] of samples.changes[s]!) {
        if (peer !== f.peer) continue
        const target = final.get(id) ?? ''
        const before = (current.get(id) ?? '') === target
        current.set(id, fp)
        const after = fp === target
        if (before && !after) differing++
        else if (!before && after) differing--
      }
      return samples.up[s]![f.peer] === true ? differing : null
    })
  })
  return {
    intervalMs,
    t: samples.t,
    peers: finals.map((f) => `p${f.peer}`),
    divergence,
    messagesPerSec: samples.messagesPerSec,
    bytesPerSec: samples.bytesPerSec,
  }
}

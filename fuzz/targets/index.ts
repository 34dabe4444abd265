import type { FuzzTarget } from '../harness.js'
import { automergeDeltas, columnsDeltas, yjsDeltas } from './deltas.js'
import { configFiles, scenarioFiles } from './files.js'
import { gossipMessages } from './gossip.js'
import { httpRequests } from './http.js'
import { syncFrames } from './sync.js'

/** Every fuzz target, in the order they run and are reported. */
export const TARGETS: readonly FuzzTarget[] = [syncFrames, gossipMessages, yjsDeltas, automergeDeltas, columnsDeltas, scenarioFiles, configFiles, httpRequests]

export function targetNamed(name: string): FuzzTarget {
  const target = TARGETS.find((t) => t.name === name)
  if (target === undefined) throw new Error(`no fuzz target '${name}' (targets: ${TARGETS.map((t) => t.name).join(', ')})`)
  return target
}

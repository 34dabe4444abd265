import { ShoalError } from '../errors.js'
import { columnsEngine } from './columns-engine.js'
import type { RowEngine } from './engine.js'
import type { EngineName } from './schema.js'
import { yjsEngine } from './yjs-engine.js'

/*
 * Port: the row engines in a browser. Yjs and columns come with the bundle; Automerge (~1 MB of
 * WASM) is fetched the first time a table using it is defined, arrives from a peer or is opened.
 */

const loaded: Partial<Record<EngineName, RowEngine>> = { yjs: yjsEngine, columns: columnsEngine }
let automerge: Promise<RowEngine> | null = null

export function engineFor(name: EngineName): RowEngine {
  const engine = loaded[name]
  if (engine === undefined) throw new ShoalError('ENGINE_NOT_LOADED', `the ${name} engine is not loaded yet in this page; await loadEngine('${name}') first (the store does this for tables it opens)`)
  return engine
}

export async function loadEngine(name: EngineName): Promise<RowEngine> {
  const engine = loaded[name]
  if (engine !== undefined) return engine
  automerge ??= import('./automerge-engine.js').then(
    (m) => (loaded.automerge = m.automergeEngine),
    (error: unknown) => {
      automerge = null
      throw new ShoalError('ENGINE_LOAD_FAILED', `cannot load the automerge engine: ${(error as Error).message}; check that the page can fetch its script chunks`, { cause: error })
    },
  )
  return automerge
}

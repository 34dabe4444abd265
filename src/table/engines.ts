import { automergeEngine } from './automerge-engine.js'
import { columnsEngine } from './columns-engine.js'
import type { RowEngine } from './engine.js'
import type { EngineName } from './schema.js'
import { yjsEngine } from './yjs-engine.js'

/*
 * Port: the row engines. In Node all three are loaded with this module; the browser build
 * replaces it with engines.browser.ts, which loads Automerge (and its WASM) only when a table
 * needs it. Callers that may meet a table's engine for the first time await loadEngine.
 */

const ENGINES: Readonly<Record<EngineName, RowEngine>> = { yjs: yjsEngine, automerge: automergeEngine, columns: columnsEngine }

export function engineFor(name: EngineName): RowEngine {
  return ENGINES[name]
}

/** The engine, once it is loaded (at once here). */
export async function loadEngine(name: EngineName): Promise<RowEngine> {
  return ENGINES[name]
}

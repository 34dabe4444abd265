import { automergeEngine } from './automerge-engine.js'
import { columnsEngine } from './columns-engine.js'
import type { RowEngine } from './engine.js'
import type { EngineName } from './schema.js'
import { yjsEngine } from './yjs-engine.js'

const ENGINES: Readonly<Record<EngineName, RowEngine>> = { yjs: yjsEngine, automerge: automergeEngine, columns: columnsEngine }

export function engineFor(name: EngineName): RowEngine {
  return ENGINES[name]
}

import type { EngineContext } from '../../src/table/engine.js'
import { engineFor } from '../../src/table/engines.js'
import { RowDocument } from '../../src/table/row.js'
import type { EngineName, ResolvedSchema } from '../../src/table/schema.js'
import { validateSchema } from '../../src/table/schema.js'

export const ENGINES: EngineName[] = ['yjs', 'automerge', 'columns']

/** Engines with text cells (the columns engine has none). */
export const hasText = (engine: EngineName): boolean => engine !== 'columns'

export function stockSchema(engine: EngineName): ResolvedSchema {
  return validateSchema({
    name: 'stock',
    primaryKey: 'sku',
    partitionBy: 'store',
    engine,
    columns: { sku: 'string', store: 'string', name: 'string', price: 'number', active: 'boolean', tags: 'json', qty: 'counter', ...(hasText(engine) ? { notes: 'text' } : {}) },
  })
}

export function replica(engine: EngineName, actor: string): RowDocument {
  const context: EngineContext = { actor, nowSeconds: () => 0 }
  return RowDocument.create(engineFor(engine), context, 'stock', 'row-1')
}

export function load(engine: EngineName, actor: string, bytes: Uint8Array): RowDocument {
  return RowDocument.decode(engineFor(engine), bytes, { actor, nowSeconds: () => 0 }, 'stock', 'row-1')
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

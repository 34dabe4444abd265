import { RowNotFoundError, ShoalError } from '../errors.js'
import type { PeerStatus } from '../status.js'
import type { Row, RowOptions, ScanOptions, Shoal } from '../shoal.js'
import { isPlainObject, type TableSchema } from '../table/schema.js'
import { readJson } from './body.js'
import { HttpError } from './errors.js'
import type { ShoalMetrics } from './metrics.js'
import { Router, type RouteContext } from './router.js'

/** Rows per scan page over HTTP: smaller than the library's ceiling so one answer stays small. */
export const DEFAULT_HTTP_SCAN_LIMIT = 100
export const MAX_HTTP_SCAN_LIMIT = 1000

/** One row as the API answers it (GET, PUT and increment alike). */
export interface RowAnswer {
  key: string
  row: Row
}

const TEXT_EDIT_FIELDS = ['column', 'index', 'delete', 'insert']

function invalid(message: string): HttpError {
  return new HttpError(400, 'VALUE_INVALID', message)
}

/** Refuses unknown or repeated query parameters, so a typo (`?partiton=`) is not silently ignored. */
function queryOf(ctx: RouteContext, allowed: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of ctx.query) {
    if (!allowed.includes(name)) {
      throw invalid(`unknown query parameter '${name}'` + (allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ' (this route takes none)'))
    }
    if (name in out) throw invalid(`query parameter '${name}' is given twice`)
    out[name] = value
  }
  return out
}

function rowOptions(ctx: RouteContext): RowOptions {
  const { partition } = queryOf(ctx, ['partition'])
  return partition === undefined ? {} : { partition }
}

async function objectBody(ctx: RouteContext, what: string): Promise<Record<string, unknown>> {
  const body = await readJson(ctx.req)
  if (!isPlainObject(body)) throw invalid(`the body must be a JSON object: ${what}`)
  return body
}

/**
 * The library's scan cursor can hold a NUL (partition and key, when scanning every partition),
 * which a shell argument cannot carry; over HTTP it travels as opaque base64url.
 */
function encodeCursor(next: string | null): string | null {
  return next === null ? null : Buffer.from(next, 'utf8').toString('base64url')
}

function decodeCursor(after: string): string {
  const decoded = /^[A-Za-z0-9_-]+$/.test(after) ? Buffer.from(after, 'base64url').toString('utf8') : ''
  if (decoded === '' || encodeCursor(decoded) !== after) throw invalid(`'after' must be the 'next' cursor of a previous page, as it was given`)
  return decoded
}

function scanOptions(ctx: RouteContext): ScanOptions {
  const q = queryOf(ctx, ['partition', 'after', 'limit'])
  const options: ScanOptions = {}
  if (q.partition !== undefined) options.partition = q.partition
  if (q.after !== undefined) options.after = decodeCursor(q.after)
  if (q.limit !== undefined) {
    const limit = /^\d{1,7}$/.test(q.limit) ? Number(q.limit) : NaN
    if (!(limit >= 1 && limit <= MAX_HTTP_SCAN_LIMIT)) throw invalid(`'limit' must be an integer from 1 to ${MAX_HTTP_SCAN_LIMIT}, got '${q.limit}'`)
    options.limit = limit
  } else {
    options.limit = DEFAULT_HTTP_SCAN_LIMIT
  }
  return options
}

/** Takes signed mesh documents; says per document its kind and whether it was new here. Throws (ShoalError) for one that is not valid. */
export type MeshDocumentSink = (documents: Uint8Array[]) => Promise<Array<{ kind: string; outcome: string }>>

/** Documents one request may carry. */
export const MAX_MESH_DOCUMENTS_PER_REQUEST = 1000

export interface RoutesInit {
  db: Shoal
  status: () => Promise<PeerStatus>
  metrics: ShoalMetrics
  meshDocuments?: MeshDocumentSink
}

/** The API's routes (see the README's HTTP API section for the contract). */
export function shoalRoutes({ db, status, metrics, meshDocuments }: RoutesInit): Router {
  const router = new Router()

  router.on('POST', '/v1/mesh/documents', async (ctx) => {
    queryOf(ctx, [])
    const body = await objectBody(ctx, '{ "documents": ["<base64 of a signed mesh document>", …] }')
    if (meshDocuments === undefined) throw new HttpError(409, 'NOT_PRIVATE', 'this peer runs an open mesh (no "mesh" in its config): there is no membership to add documents to')
    const list = body.documents
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_MESH_DOCUMENTS_PER_REQUEST || Object.keys(body).length !== 1) {
      throw invalid(`the body must be { "documents": [...] } with 1 to ${MAX_MESH_DOCUMENTS_PER_REQUEST} base64 strings`)
    }
    const bytes = list.map((d, i) => {
      if (typeof d !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(d)) throw invalid(`documents[${i}] is not a base64 string`)
      return new Uint8Array(Buffer.from(d, 'base64'))
    })
    try {
      return { json: { documents: await meshDocuments(bytes) } }
    } catch (error) {
      if (error instanceof ShoalError) throw new HttpError(400, error.code, error.message)
      throw error
    }
  })

  router.on('GET', '/v1/status', async (ctx) => {
    queryOf(ctx, [])
    return { json: await status() }
  })

  router.on('PUT', '/v1/tables/:table', async (ctx) => {
    queryOf(ctx, [])
    const { table } = ctx.params as { table: string }
    const body = await objectBody(ctx, 'a table schema { primaryKey, partitionBy?, engine?, columns }')
    if (body.name !== undefined && body.name !== table) {
      throw invalid(`the schema's name ${JSON.stringify(body.name)} does not match the table in the path '${table}'; leave 'name' out or make them equal`)
    }
    return { json: await db.defineTable({ ...body, name: table } as unknown as TableSchema) }
  })

  router.on('GET', '/v1/tables/:table/rows', async (ctx) => {
    const options = scanOptions(ctx)
    const page = await db.table(ctx.params.table!).scan(options)
    return { json: { rows: page.rows, next: encodeCursor(page.next) } }
  })

  router.on('GET', '/v1/tables/:table/rows/:key', async (ctx) => {
    const { table, key } = ctx.params as { table: string; key: string }
    const row = await db.table(table).get(key, rowOptions(ctx))
    if (row === null) throw new RowNotFoundError(table, key)
    return { json: { key, row } satisfies RowAnswer }
  })

  router.on('PUT', '/v1/tables/:table/rows/:key', async (ctx) => {
    const { table, key } = ctx.params as { table: string; key: string }
    const options = rowOptions(ctx)
    const t = db.table(table)
    const values = await objectBody(ctx, 'column → value')
    // `put` merges the given columns into a live row (other columns keep their values) and
    // creates the row when it is absent or deleted, in one write: no read-then-write race.
    const row = await t.put(key, values, options)
    return { json: { key, row } satisfies RowAnswer }
  })

  router.on('DELETE', '/v1/tables/:table/rows/:key', async (ctx) => {
    const { table, key } = ctx.params as { table: string; key: string }
    return { json: { deleted: await db.table(table).delete(key, rowOptions(ctx)) } }
  })

  router.on('POST', '/v1/tables/:table/rows/:key/increment', async (ctx) => {
    const { table, key } = ctx.params as { table: string; key: string }
    const options = rowOptions(ctx)
    const t = db.table(table)
    const body = await objectBody(ctx, '{ "column": "<counter column>", "by": <integer, default 1> }')
    for (const field of Object.keys(body)) {
      if (field !== 'column' && field !== 'by') throw invalid(`unknown field '${field}' in an increment (allowed: column, by)`)
    }
    if (typeof body.column !== 'string' || body.column === '') throw invalid(`an increment needs "column": the name of a counter column`)
    if (body.by !== undefined && typeof body.by !== 'number') throw invalid(`"by" must be an integer, got ${JSON.stringify(body.by)}`)
    const row = await t.increment(key, body.column, body.by ?? 1, options)
    return { json: { key, row } satisfies RowAnswer }
  })

  router.on('POST', '/v1/tables/:table/rows/:key/text', async (ctx) => {
    const { table, key } = ctx.params as { table: string; key: string }
    const options = rowOptions(ctx)
    const t = db.table(table)
    const body = await objectBody(ctx, '{ "column": "<text column>", "index": <position>, "delete": <count, default 0>, "insert": "<text, default empty>" }')
    for (const field of Object.keys(body)) {
      if (!TEXT_EDIT_FIELDS.includes(field)) throw invalid(`unknown field '${field}' in a text edit (allowed: ${TEXT_EDIT_FIELDS.join(', ')})`)
    }
    if (typeof body.column !== 'string' || body.column === '') throw invalid(`a text edit needs "column": the name of a text column`)
    if (!Number.isSafeInteger(body.index)) throw invalid(`"index" must be an integer position in the text (UTF-16 code units), got ${JSON.stringify(body.index)}`)
    if (body.delete !== undefined && !Number.isSafeInteger(body.delete)) throw invalid(`"delete" must be an integer count of UTF-16 code units, got ${JSON.stringify(body.delete)}`)
    if (body.insert !== undefined && typeof body.insert !== 'string') throw invalid(`"insert" must be a string, got ${JSON.stringify(body.insert)}`)
    if (body.delete === undefined && body.insert === undefined) throw invalid(`a text edit needs "delete", "insert" or both`)
    const edit = { index: body.index as number, delete: (body.delete as number | undefined) ?? 0, insert: (body.insert as string | undefined) ?? '' }
    const row = await t.editText(key, body.column, edit, options)
    return { json: { key, row } satisfies RowAnswer }
  })

  router.on('GET', '/metrics', async (ctx) => {
    queryOf(ctx, [])
    return { text: await metrics.render(), contentType: metrics.contentType }
  })

  return router
}

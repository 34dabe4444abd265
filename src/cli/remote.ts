import { readFile } from 'node:fs/promises'
import { ShoalError } from '../errors.js'
import { ApiUnreachableError, ShoalClient, type RowQuery } from '../http/client.js'
import type { Row, TextEdit } from '../shoal.js'
import { isPlainObject } from '../validation.js'
import { explainRefusal, NoPeerError, requireApi, startHint } from './api-target.js'
import { formatRow, formatRows } from './format.js'
import { resolveConfig, type Options } from './options.js'

/** The verbs that talk to a running peer over its HTTP API. */
export const REMOTE_VERBS = {
  get: { args: ['table', 'key'], optional: [] },
  put: { args: ['table', 'key', 'json-object'], optional: [] },
  delete: { args: ['table', 'key'], optional: [] },
  increment: { args: ['table', 'key', 'column'], optional: ['by'] },
  scan: { args: ['table'], optional: [] },
  define: { args: ['table', 'schema-json-or-@file'], optional: [] },
  edit: { args: ['table', 'key', 'column'], optional: [] },
} as const satisfies Record<string, { args: readonly string[]; optional: readonly string[] }>

export type RemoteVerb = keyof typeof REMOTE_VERBS

/** A verb's argument is malformed (exit 2, like other usage errors). */
export class ArgumentError extends ShoalError {
  constructor(message: string) {
    super('ARGUMENT_INVALID', message)
  }
}

function parseObject(what: string, text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new ArgumentError(`${what} is not valid JSON (${(error as Error).message}); quote it for the shell, e.g. '{"qty": 3}'`)
  }
  if (!isPlainObject(value)) throw new ArgumentError(`${what} must be a JSON object, e.g. '{"qty": 3}'`)
  return value
}

function print(options: Options, answer: unknown, human: () => string): void {
  console.log(options.json ? JSON.stringify(answer, null, 2) : human())
}

async function connect(options: Options): Promise<{ client: ShoalClient; via: string }> {
  const config = await resolveConfig(options)
  const target = await requireApi(options, config)
  return { client: new ShoalClient(target.url, { token: target.token }), via: target.via }
}

export async function runRemote(verb: RemoteVerb, args: readonly string[], options: Options): Promise<void> {
  const { client, via } = await connect(options)
  const query: RowQuery = options.partition === undefined ? {} : { partition: options.partition }
  const [table, second, third, fourth] = args as [string, string, string | undefined, string | undefined]
  try {
    switch (verb) {
      case 'get': {
        const answer = await client.get(table, second, query)
        return print(options, answer, () => formatRow(answer.row))
      }
      case 'put': {
        const answer = await client.put(table, second, parseObject('the row', third!), query)
        return print(options, answer, () => formatRow(answer.row))
      }
      case 'delete': {
        const answer = await client.delete(table, second, query)
        return print(options, answer, () => (answer.deleted ? `deleted ${table} ${second}` : `no live row ${table} ${second}; nothing to delete`))
      }
      case 'increment': {
        let by: number | undefined
        if (fourth !== undefined) {
          by = /^[+-]?\d+$/.test(fourth) ? Number(fourth) : NaN
          if (!Number.isSafeInteger(by)) throw new ArgumentError(`increment: 'by' must be an integer, e.g. 5 or -1 (got '${fourth}')`)
        }
        const answer = await client.increment(table, second, third!, by, query)
        return print(options, answer, () => formatRow(answer.row))
      }
      case 'edit': {
        const answer = await client.editText(table, second, third!, textEdit(options), query)
        return print(options, answer, () => formatRow(answer.row))
      }
      case 'scan': {
        const page = await client.scan(table, { ...query, after: options.after, limit: options.limit })
        return print(options, page, () => scanText(page.rows, page.next, table))
      }
      case 'define': {
        const text = second.startsWith('@') ? await readSchemaFile(second.slice(1)) : second
        const schema = await client.defineTable(table, parseObject('the schema', text) as Parameters<ShoalClient['defineTable']>[1])
        return print(options, schema, () => formatRow({ ...schema, columns: schema.columns }))
      }
    }
  } catch (error) {
    if (error instanceof ApiUnreachableError) throw new NoPeerError(`${error.message}, found via ${via}; ${startHint(options)}`, { cause: error })
    throw explainRefusal(error, via)
  }
}

/** A non-negative integer option of `edit`; ArgumentError naming it otherwise. */
function count(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n)) throw new ArgumentError(`edit: --${name} must be a whole number, 0 or more (got '${value}')`)
  return n
}

function textEdit(options: Options): TextEdit {
  const index = count('index', options.index)
  if (index === undefined) throw new ArgumentError(`edit needs --index N: where the edit starts (0 = before the first character)`)
  const del = count('delete', options.delete)
  if (del === undefined && options.insert === undefined) throw new ArgumentError(`edit needs --delete N, --insert TEXT or both`)
  return { index, ...(del === undefined ? {} : { delete: del }), ...(options.insert === undefined ? {} : { insert: options.insert }) }
}

function scanText(rows: readonly Row[], next: string | null, table: string): string {
  if (rows.length === 0) return `no rows in ${table}${next === null ? '' : ' on this page'}`
  const more = next === null ? `${rows.length} row(s); last page` : `${rows.length} row(s); next page: --after ${next}`
  return `${formatRows(rows)}\n\n${more}`
}

async function readSchemaFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new ArgumentError(`cannot read schema file '${path}': ${(error as Error).message}`)
  }
}

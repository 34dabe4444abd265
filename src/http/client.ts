import { ShoalError } from '../errors.js'
import type { PeerStatus } from '../status.js'
import type { Row, ScanPage, TextEdit } from '../shoal.js'
import type { ResolvedSchema, TableSchema } from '../table/schema.js'
import type { RowAnswer } from './routes.js'

/** The API answered with its error contract; `code` is the server's (ROW_NOT_FOUND, …). */
export class ApiError extends ShoalError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message)
  }
}

/** Nothing answered at the API's address, or what answered is not a Shoal peer. */
export class ApiUnreachableError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('API_UNREACHABLE', message, options)
  }
}

export interface RowQuery {
  partition?: string
}

export interface ScanQuery extends RowQuery {
  after?: string
  limit?: number | string
}

const path = (...segments: string[]): string => segments.map((s) => '/' + encodeURIComponent(s)).join('')

function withQuery(base: string, query: object): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value))
  const text = params.toString()
  return text === '' ? base : `${base}?${text}`
}

export interface ShoalClientOptions {
  /** The API's bearer token (the "token" in the peer's api.json); without it every call answers 401. */
  token?: string | null
  /** Give up on a call after this long (default 30 s). */
  timeoutMs?: number
}

/** A small client for a running peer's HTTP API (what the `shoal get/put/…` verbs use). */
export class ShoalClient {
  private readonly token: string | null
  private readonly timeoutMs: number

  constructor(
    readonly url: string,
    options: ShoalClientOptions = {},
  ) {
    this.token = options.token ?? null
    this.timeoutMs = options.timeoutMs ?? 30_000
  }

  status(): Promise<PeerStatus> {
    return this.request('GET', '/v1/status')
  }

  defineTable(table: string, schema: Omit<TableSchema, 'name'> & { name?: string }): Promise<ResolvedSchema> {
    return this.request('PUT', path('v1', 'tables', table), schema)
  }

  get(table: string, key: string, query: RowQuery = {}): Promise<RowAnswer> {
    return this.request('GET', withQuery(path('v1', 'tables', table, 'rows', key), query))
  }

  put(table: string, key: string, values: Row, query: RowQuery = {}): Promise<RowAnswer> {
    return this.request('PUT', withQuery(path('v1', 'tables', table, 'rows', key), query), values)
  }

  delete(table: string, key: string, query: RowQuery = {}): Promise<{ deleted: boolean }> {
    return this.request('DELETE', withQuery(path('v1', 'tables', table, 'rows', key), query))
  }

  increment(table: string, key: string, column: string, by?: number, query: RowQuery = {}): Promise<RowAnswer> {
    return this.request('POST', withQuery(path('v1', 'tables', table, 'rows', key, 'increment'), query), by === undefined ? { column } : { column, by })
  }

  editText(table: string, key: string, column: string, edit: TextEdit, query: RowQuery = {}): Promise<RowAnswer> {
    return this.request('POST', withQuery(path('v1', 'tables', table, 'rows', key, 'text'), query), { column, ...edit })
  }

  scan(table: string, query: ScanQuery = {}): Promise<ScanPage> {
    return this.request('GET', withQuery(path('v1', 'tables', table, 'rows'), query))
  }

  private async request<T>(method: string, target: string, body?: unknown): Promise<T> {
    let response: Response
    try {
      const headers: Record<string, string> = {}
      if (this.token !== null) headers.authorization = `Bearer ${this.token}`
      if (body !== undefined) headers['content-type'] = 'application/json'
      response = await fetch(this.url + target, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
    } catch (error) {
      // fetch says only "fetch failed"; the reason (ECONNREFUSED, bad port…) is in its cause.
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      const why = (error as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (error as Error).message)
      throw new ApiUnreachableError(`no running peer answers at ${this.url} (${why})`, { cause: error })
    }
    const text = await response.text()
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new ApiUnreachableError(`${this.url} answered ${response.status} with something that is not JSON; is it a Shoal peer's HTTP API?`)
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error
      if (typeof error?.code !== 'string' || typeof error.message !== 'string') {
        throw new ApiUnreachableError(`${this.url} answered ${response.status} without a Shoal error body; is it a Shoal peer's HTTP API?`)
      }
      throw new ApiError(response.status, error.code, error.message)
    }
    return parsed as T
  }
}

import type { IncomingMessage } from 'node:http'
import { HttpError } from './errors.js'

/** What a handler answers: a JSON value, or a body (metrics text, the web app's files) with its content type; `headers` are added to the answer. */
export type Answer = ({ status?: number; json: unknown } | { status?: number; text: string | Uint8Array; contentType: string }) & { headers?: Readonly<Record<string, string>> }

export interface RouteContext {
  req: IncomingMessage
  /** Path parameters, percent-decoded. */
  params: Readonly<Record<string, string>>
  query: URLSearchParams
}

export type Handler = (ctx: RouteContext) => Promise<Answer>

interface Route {
  /** Literal segments, or ':name' for a parameter. */
  segments: string[]
  methods: Map<string, Handler>
}

/** Splits a raw request target into path segments and query, without URL normalisation. */
function splitTarget(target: string): { segments: string[]; query: URLSearchParams } {
  const cut = target.indexOf('?')
  const path = cut < 0 ? target : target.slice(0, cut)
  // Segments are matched still encoded, so a key holding '/' (sent as %2F) stays one segment.
  return { segments: path.split('/').slice(1), query: new URLSearchParams(cut < 0 ? '' : target.slice(cut + 1)) }
}

function decodeSegment(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new HttpError(400, 'BAD_PATH', `the ${name} in the path is not valid percent-encoding: '${raw}'; encode it with encodeURIComponent`)
  }
}

/** Method + path-pattern routing: unknown paths are 404 NOT_FOUND, known paths with another method 405. */
export class Router {
  private readonly routes: Route[] = []

  on(method: string, pattern: string, handler: Handler): this {
    const segments = pattern.split('/').slice(1)
    let route = this.routes.find((r) => r.segments.join('/') === segments.join('/'))
    if (route === undefined) {
      route = { segments, methods: new Map() }
      this.routes.push(route)
    }
    route.methods.set(method, handler)
    return this
  }

  /** Finds the handler for a request; throws the HttpError to answer when there is none. */
  resolve(method: string, target: string): { handler: Handler; params: Record<string, string>; query: URLSearchParams } {
    const { segments, query } = splitTarget(target)
    for (const route of this.routes) {
      const raw = matchSegments(route.segments, segments)
      if (raw === null) continue
      const handler = route.methods.get(method)
      if (handler === undefined) {
        const allow = [...route.methods.keys()].join(', ')
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${route.segments.map((s) => '/' + s).join('')}; use ${allow}`, { allow })
      }
      const params: Record<string, string> = {}
      for (const [name, value] of Object.entries(raw)) params[name] = decodeSegment(name, value)
      return { handler, params, query }
    }
    throw new HttpError(404, 'NOT_FOUND', `no such route: ${method} ${target.split('?')[0]}; see the HTTP API section of the README`)
  }
}

function matchSegments(pattern: readonly string[], actual: readonly string[]): Record<string, string> | null {
  if (pattern.length !== actual.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const want = pattern[i]!
    const got = actual[i]!
    if (want.startsWith(':')) {
      if (got === '') return null
      params[want.slice(1)] = got
    } else if (want !== got) return null
  }
  return params
}

import type { IncomingHttpHeaders } from 'node:http'
import { networkInterfaces } from 'node:os'
import { parseHostPort, parseOrigin } from '../config.js'
import { CORS_MAX_AGE_SECONDS } from './constants.js'
import { HttpError } from './errors.js'
import { TokenCheck } from './token.js'
import { isUiRequest } from './ui.js'

/*
 * Who may use the local HTTP API. Loopback is not private: every web page the user opens can send
 * requests to 127.0.0.1, and a page on a domain the attacker re-points at 127.0.0.1 (DNS
 * rebinding) can read the answers too. So, in this order:
 *   1. Host must name the API itself (loopback names, the listen address, configured names): a
 *      rebinding page's requests carry its own domain in Host.
 *   2. Origin, when a browser sends one, must be on the allow-list (empty by default); the CLI,
 *      curl and Prometheus send none.
 *   3. Authorization: Bearer <token>, the token `shoal start` writes to <data>/api.json (0600):
 *      browsers never add it on their own, so no page can forge it, and other local users cannot
 *      read it. /metrics may be exempted (metricsPublic).
 *   4. Writes must be `application/json` (checked in server.ts once the route is known): a page
 *      can send text/plain or form bodies cross-site without asking, but JSON needs a CORS
 *      preflight, which only allowed origins pass.
 * Each refusal closes the connection without reading the body.
 */

/** Addresses that mean "every interface". */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::'])
const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '::1']
const CORS_METHODS = 'GET, PUT, POST, DELETE'
const CORS_HEADERS = 'authorization, content-type'

export interface AccessInit {
  /** The bearer token every request must carry (except /metrics when metricsPublic). */
  token: string
  /** The host the API listens on, as configured (a wildcard admits this machine's addresses). */
  listenHost: string
  /** The port it listens on (after port 0 was resolved). */
  port: number
  /** More `Host` values to accept, as 'name:port' (e.g. 'shoal.local:7001'). */
  hosts?: readonly string[]
  /** Web origins allowed to call the API from a browser (CORS), e.g. 'https://app.example'. */
  origins?: readonly string[]
  /** Serve GET /metrics without the token (for scrapers that cannot send one). */
  metricsPublic?: boolean
  /** Serve the web app's files under /ui/ without the token or an allowed Origin (they hold no data; see ui.ts). */
  uiPublic?: boolean
  /** This machine's addresses, for a wildcard listen host (default: os.networkInterfaces()). */
  localAddresses?: readonly string[]
}

/** What an admitted request gets: headers to add to its answer, and whether it was a CORS preflight (answered already). */
export interface Admission {
  headers: Record<string, string>
  preflight: boolean
}

/** `host:port` as it appears in a Host header (IPv6 in brackets), lower-case. */
function authority(host: string, port: number): string {
  const h = host.toLowerCase()
  return `${h.includes(':') ? `[${h}]` : h}:${port}`
}

function refuse(status: number, code: string, message: string): HttpError {
  // The body of a refused request is not read: close rather than leave it for keep-alive.
  return new HttpError(status, code, message, { connection: 'close' })
}

function thisMachine(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.replace(/%.*$/, '')))
}

export class AccessPolicy {
  /** Accepted Host header values, lower-case. */
  readonly hosts: ReadonlySet<string>
  /** Accepted Origin header values (canonical origins). */
  readonly origins: ReadonlySet<string>
  private readonly token: TokenCheck
  private readonly metricsPublic: boolean
  private readonly uiPublic: boolean

  constructor(init: AccessInit) {
    const names = WILDCARD_HOSTS.has(init.listenHost) ? [...LOOPBACK_HOSTS, ...(init.localAddresses ?? thisMachine())] : [...LOOPBACK_HOSTS, init.listenHost]
    const hosts = new Set<string>()
    for (const name of names) {
      hosts.add(authority(name, init.port))
      // Clients leave out the scheme's default port.
      if (init.port === 80) hosts.add(authority(name, init.port).replace(/:80$/, ''))
    }
    for (const value of init.hosts ?? []) {
      const { host, port } = parseHostPort(`allowed HTTP host`, value)
      hosts.add(authority(host, port))
    }
    this.hosts = hosts
    this.origins = new Set((init.origins ?? []).map((o) => parseOrigin('allowed HTTP origin', o)))
    this.token = new TokenCheck(init.token)
    this.metricsPublic = init.metricsPublic ?? false
    this.uiPublic = init.uiPublic ?? false
  }

  /** Admits a request or throws the HttpError to answer it with (403 or 401). */
  admit(method: string, target: string, headers: IncomingHttpHeaders): Admission {
    const host = headers.host?.toLowerCase()
    if (host === undefined || !this.hosts.has(host)) {
      throw refuse(
        403,
        'HOST_REFUSED',
        `Host ${host === undefined ? '(none)' : JSON.stringify(host)} is not this API's address (${[...this.hosts].join(', ')}); ` +
          `to reach it under another name, add that name to the config's "httpHosts"`,
      )
    }
    // The app's own page and scripts: a browser navigating to it sends no token, and its module
    // scripts carry the page's Origin. Host was checked: a rebinding page cannot read them either.
    if (this.uiPublic && isUiRequest(method, target)) return { preflight: false, headers: {} }
    const origin = headers.origin
    const out: Record<string, string> = {}
    if (origin !== undefined) {
      if (!this.origins.has(origin)) {
        throw refuse(403, 'ORIGIN_REFUSED', `requests from web pages at ${JSON.stringify(origin)} are not allowed; to allow a web app, add its origin to the config's "httpOrigins"`)
      }
      out['access-control-allow-origin'] = origin
      out.vary = 'Origin'
      // A preflight carries no credentials: it asks whether the real request may be sent.
      if (method === 'OPTIONS' && headers['access-control-request-method'] !== undefined) {
        return {
          preflight: true,
          headers: { ...out, 'access-control-allow-methods': CORS_METHODS, 'access-control-allow-headers': CORS_HEADERS, 'access-control-max-age': String(CORS_MAX_AGE_SECONDS) },
        }
      }
    }
    if (this.metricsPublic && (method === 'GET' || method === 'HEAD') && target.split('?')[0] === '/metrics') return { preflight: false, headers: out }
    const verdict = this.token.verdict(headers.authorization)
    if (verdict !== 'ok') {
      const why = verdict === 'missing' ? 'this API needs a token' : verdict === 'malformed' ? `the Authorization header must be 'Bearer <token>'` : 'the API token is wrong'
      const error = refuse(401, 'UNAUTHORIZED', `${why}: send 'Authorization: Bearer <token>' with the "token" from api.json in the running peer's data folder (a new one at every start)`)
      throw new HttpError(error.status, error.code, error.message, { ...error.headers, ...out, 'www-authenticate': 'Bearer realm="shoal"' })
    }
    return { preflight: false, headers: out }
  }
}

/** True for `application/json`, with or without parameters (`; charset=utf-8`). */
export function isJsonContentType(value: string | undefined): boolean {
  return value !== undefined && value.split(';')[0]!.trim().toLowerCase() === 'application/json'
}

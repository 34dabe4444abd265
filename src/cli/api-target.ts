import { join, resolve } from 'node:path'
import { parseHostPort, type PeerConfig } from '../config.js'
import { ShoalError } from '../errors.js'
import { httpUrl } from '../http/address.js'
import { ApiError } from '../http/client.js'
import { API_FILE, readApiFile } from '../http/api-file.js'
import type { Options } from './options.js'

export { API_FILE }

/** Names the environment variable that gives the verbs the API token when no api.json has it. */
export const TOKEN_ENV = 'SHOAL_TOKEN'

export interface RunningPeer {
  url: string
  pid: number
  /** The API token from api.json (null from a peer older than tokens). */
  token: string | null
  file: string
}

/** Where the verbs send their requests, the token to send, and how that address was found (for messages). */
export interface ApiTarget {
  url: string
  token: string | null
  via: string
}

/** No running peer's HTTP API could be found or reached for the data folder. */
export class NoPeerError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PEER_NOT_RUNNING', message, options)
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The peer running on a data folder, from its api.json; null when there is none. A peer killed
 * without stopping leaves the file behind, so one whose process is gone counts as not running.
 */
export async function runningPeer(dataDir: string): Promise<RunningPeer | null> {
  const dir = resolve(dataDir)
  const found = await readApiFile(dir)
  if (found === null || !processAlive(found.pid)) return null
  return { ...found, file: join(dir, API_FILE) }
}

/**
 * Finds the HTTP API to talk to: `--http`, else the api.json of the data folder, else the
 * config's `http` when it names a fixed port. Null when none of them says anything. The token is
 * the one api.json gives with the address; for an address from elsewhere, $SHOAL_TOKEN when set,
 * else the data folder's api.json's.
 */
export async function findApi(options: Options, config: PeerConfig): Promise<ApiTarget | null> {
  const fromEnv = process.env[TOKEN_ENV]
  const envToken = fromEnv === undefined || fromEnv === '' ? null : fromEnv
  const running = await runningPeer(config.data)
  const token = envToken ?? running?.token ?? null
  if (options.http !== undefined) {
    if (options.http === 'off' || options.noHttp) throw new NoPeerError(`--http off: this command talks to a running peer over HTTP and needs its address`)
    const { host, port } = parseHostPort('--http', options.http)
    return { url: httpUrl(host, port), token, via: '--http' }
  }
  if (running !== null) return { url: running.url, token: running.token ?? envToken, via: running.file }
  if (config.http !== null) {
    const { host, port } = parseHostPort(`${options.config ?? 'config'}: 'http'`, config.http)
    if (port !== 0) return { url: httpUrl(host, port), token, via: `${options.config ?? 'config'} "http"` }
  }
  return null
}

export function startHint(options: Options): string {
  return `start one with \`shoal start ${options.config === undefined ? '--data ' + (options.data ?? 'DIR') : '--config ' + options.config}\` or pass --http HOST:PORT`
}

/** Like findApi, but a clear NoPeerError when there is nothing to talk to. */
export async function requireApi(options: Options, config: PeerConfig): Promise<ApiTarget> {
  const target = await findApi(options, config)
  if (target === null) {
    throw new NoPeerError(`no running peer for data folder '${resolve(config.data)}' (no ${API_FILE} there); ${startHint(options)}`)
  }
  return target
}

/**
 * A 401 from the API means the token the verbs sent (from api.json or $SHOAL_TOKEN) was missing or
 * stale: say where it came from. Other errors pass through.
 */
export function explainRefusal(error: unknown, via: string): unknown {
  if (!(error instanceof ApiError) || error.status !== 401) return error
  const hint =
    via === '--http' || !via.endsWith(API_FILE)
      ? `set ${TOKEN_ENV} to the "token" in the peer's ${API_FILE}, or pass --data with the peer's data folder`
      : `${via} does not hold the running peer's token; is it a peer from an older Shoal? restart it`
  return new ApiError(error.status, error.code, `${error.message}; ${hint}`)
}

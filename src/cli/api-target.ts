import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseHostPort, type PeerConfig } from '../config.js'
import { ShoalError } from '../errors.js'
import { httpUrl } from '../http/address.js'
import type { Options } from './options.js'

/**
 * The file a running peer writes into its data folder: `{ url, pid }` (API_FILE in
 * src/peer/peer.ts; a test keeps the two equal). Not imported from there so that the client verbs
 * do not load libp2p just to find a URL.
 */
export const API_FILE = 'api.json'

export interface RunningPeer {
  url: string
  pid: number
  file: string
}

/** Where the verbs send their requests, and how that address was found (for messages). */
export interface ApiTarget {
  url: string
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
  const file = join(resolve(dataDir), API_FILE)
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch {
    return null
  }
  const { url, pid } = (parsed ?? {}) as { url?: unknown; pid?: unknown }
  if (typeof url !== 'string' || !/^https?:\/\//.test(url) || typeof pid !== 'number' || !Number.isSafeInteger(pid)) return null
  return processAlive(pid) ? { url, pid, file } : null
}

/**
 * Finds the HTTP API to talk to: `--http`, else the api.json of the data folder, else the
 * config's `http` when it names a fixed port. Null when none of them says anything.
 */
export async function findApi(options: Options, config: PeerConfig): Promise<ApiTarget | null> {
  if (options.http !== undefined) {
    if (options.http === 'off' || options.noHttp) throw new NoPeerError(`--http off: this command talks to a running peer over HTTP and needs its address`)
    const { host, port } = parseHostPort('--http', options.http)
    return { url: httpUrl(host, port), via: '--http' }
  }
  const running = await runningPeer(config.data)
  if (running !== null) return { url: running.url, via: running.file }
  if (config.http !== null) {
    const { host, port } = parseHostPort(`${options.config ?? 'config'}: 'http'`, config.http)
    if (port !== 0) return { url: httpUrl(host, port), via: `${options.config ?? 'config'} "http"` }
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

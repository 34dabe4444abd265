import { ConfigError, loadConfig, parseConfig, parseHostPort, type PeerConfig } from '../config.js'

/** Command-line options shared by the verbs (each verb reads the ones it needs). */
export interface Options {
  config?: string
  data?: string
  listen?: string[]
  bootstrap?: string[]
  noMdns?: boolean
  /** `--open`: as `"open": true` in the config. */
  open?: boolean
  /** `--http HOST:PORT`; 'off' only makes sense for `start`. */
  http?: string
  noHttp?: boolean
  /** start: serve the web app (as "ui": true in the config). */
  ui?: boolean
  json: boolean
  partition?: string
  after?: string
  limit?: string
  /** edit: position, characters to delete, text to insert. */
  index?: string
  delete?: string
  insert?: string
}

/** `--http off` and `--no-http` turn the API off; anything else must be HOST:PORT. */
function httpOverride(options: Options): { http: string | null } | Record<string, never> {
  if (options.noHttp || options.http === 'off') return { http: null }
  if (options.http === undefined) return {}
  parseHostPort('--http', options.http)
  return { http: options.http }
}

function openOverride(config: PeerConfig, options: Options): { open: true } {
  if (config.mesh !== null) throw new ConfigError(`--open: ${options.config ?? 'the config'} names a private mesh ("mesh"); a peer is in a private mesh or in an open one`)
  return { open: true }
}

/** The config file (or defaults) with the command-line flags applied over it. */
export async function resolveConfig(options: Options): Promise<PeerConfig> {
  const config: PeerConfig = options.config === undefined ? parseConfig({}, '(defaults)') : await loadConfig(options.config)
  return applyFlags(config, options)
}

/** A config with the command-line flags applied over it. */
export function applyFlags(config: PeerConfig, options: Options): PeerConfig {
  return {
    ...config,
    ...(options.data === undefined ? {} : { data: options.data }),
    ...(options.listen === undefined ? {} : { listen: options.listen }),
    ...(options.bootstrap === undefined ? {} : { bootstrap: [...config.bootstrap, ...options.bootstrap] }),
    ...(options.noMdns ? { mdns: false } : {}),
    ...(options.open === true ? openOverride(config, options) : {}),
    ...httpOverride(options),
    ...(options.ui === true ? { ui: true } : {}),
  }
}

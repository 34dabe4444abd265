import { shown } from './validation.js'

/*
 * One logger interface for every component (store, replication, HTTP API, bridge, simulator),
 * injected, so a library user, the CLI, a test or the simulator decides where lines go. Message
 * first, structured fields second: operators read the message, scripts read the fields.
 *
 * Strings chosen by a peer (row keys, table names, error texts from frames) go into fields or
 * through `quote`, never raw into a message: a terminal would otherwise execute their control
 * characters.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFields = Readonly<Record<string, unknown>>

export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
  /** A logger whose lines all carry `bindings` (e.g. { component: 'gossip' }). */
  child(bindings: LogFields): Logger
}

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error']

/** Writes to the console (a browser page's default when it wants lines), from `level` up. */
export function consoleLogger(level: LogLevel = 'info', bindings: LogFields = {}): Logger {
  const min = LOG_LEVELS.indexOf(level)
  return callbackLogger((at, message, fields) => {
    if (LOG_LEVELS.indexOf(at) >= min) console[at](message, fields)
  }, bindings)
}

/** Drops everything (library default where the caller gave no logger and wants silence). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
}

export interface LogLine {
  level: LogLevel
  message: string
  fields: LogFields
}

/** Keeps lines in memory (tests, the simulator's per-peer logs). */
export class MemoryLogger implements Logger {
  constructor(
    readonly lines: LogLine[] = [],
    private readonly bindings: LogFields = {},
  ) {}

  debug(message: string, fields?: LogFields): void {
    this.push('debug', message, fields)
  }

  info(message: string, fields?: LogFields): void {
    this.push('info', message, fields)
  }

  warn(message: string, fields?: LogFields): void {
    this.push('warn', message, fields)
  }

  error(message: string, fields?: LogFields): void {
    this.push('error', message, fields)
  }

  child(bindings: LogFields): Logger {
    return new MemoryLogger(this.lines, { ...this.bindings, ...bindings })
  }

  /** The lines' messages, for assertions. */
  messages(level?: LogLevel): string[] {
    return this.lines.filter((l) => level === undefined || l.level === level).map((l) => l.message)
  }

  private push(level: LogLevel, message: string, fields: LogFields | undefined): void {
    this.lines.push({ level, message, fields: { ...this.bindings, ...fields } })
  }
}

/** Calls `write(level, line)` for each line (e.g. the simulator prefixing a peer's name). */
export function callbackLogger(write: (level: LogLevel, message: string, fields: LogFields) => void, bindings: LogFields = {}): Logger {
  const line = (level: LogLevel) => (message: string, fields?: LogFields) => write(level, message, { ...bindings, ...fields })
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (more) => callbackLogger(write, { ...bindings, ...more }),
  }
}

/** Longest text of peer-chosen origin quoted into a log message. */
export const MAX_QUOTED_CHARS = 120

/**
 * A string of untrusted origin made safe to put in a message: JSON-quoted (control characters
 * escaped) and cut to MAX_QUOTED_CHARS.
 */
export function quote(value: unknown, max = MAX_QUOTED_CHARS): string {
  const text = typeof value === 'string' ? value : String(value)
  const cut = text.length > max ? text.slice(0, max) + '…' : text
  return JSON.stringify(cut)
}

/** Longest line of untrusted origin written (messages built from peers' errors). */
export const MAX_UNTRUSTED_LINE_CHARS = 500

/**
 * A message that may carry text of untrusted origin (an error a peer's bytes caused), made safe
 * for a terminal: control characters (C0, DEL, C1, and the bidirectional overrides) escaped as
 * \uXXXX, and the whole cut to MAX_UNTRUSTED_LINE_CHARS.
 */
export function escapeControls(text: string, max = MAX_UNTRUSTED_LINE_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return escaped.length > max ? escaped.slice(0, max) + '…' : escaped
}

/** What went wrong, for a log line: the error's message, or the thrown value itself when it has none. */
export function errorText(error: unknown): string {
  if (error instanceof Error && error.message !== '') return error.message
  if (error instanceof Error) return error.name
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : shown(error)
}

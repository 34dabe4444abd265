import pino from 'pino'
import pretty from 'pino-pretty'
import { LOG_LEVELS, type LogFields, type Logger, type LogLevel } from './log.js'

/* A Node peer's log lines: pino on stderr (log.ts holds the interface; a browser page uses consoleLogger or its own). */

export interface LoggerOptions {
  /** Lowest level written (default 'info', or SHOAL_LOG_LEVEL). */
  level?: LogLevel
  /** 'pretty': readable lines for a terminal; 'json': one JSON object per line (default: pretty on a TTY, else json). */
  format?: 'pretty' | 'json'
  /** Where lines go (default process.stderr). */
  destination?: NodeJS.WritableStream & { isTTY?: boolean }
  /** Fields on every line (e.g. { peer: 'hq' }). */
  bindings?: LogFields
}

function levelFromEnv(): LogLevel | undefined {
  const value = process.env.SHOAL_LOG_LEVEL
  return value !== undefined && (LOG_LEVELS as readonly string[]).includes(value) ? (value as LogLevel) : undefined
}

class PinoLogger implements Logger {
  constructor(private readonly pino: pino.Logger) {}

  debug(message: string, fields?: LogFields): void {
    if (fields === undefined) this.pino.debug(message)
    else this.pino.debug(fields, message)
  }

  info(message: string, fields?: LogFields): void {
    if (fields === undefined) this.pino.info(message)
    else this.pino.info(fields, message)
  }

  warn(message: string, fields?: LogFields): void {
    if (fields === undefined) this.pino.warn(message)
    else this.pino.warn(fields, message)
  }

  error(message: string, fields?: LogFields): void {
    if (fields === undefined) this.pino.error(message)
    else this.pino.error(fields, message)
  }

  child(bindings: LogFields): Logger {
    return new PinoLogger(this.pino.child(bindings))
  }
}

/** A pino logger: JSON lines for operators and log shippers, readable lines on a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr
  const format = options.format ?? (destination.isTTY === true ? 'pretty' : 'json')
  const level = options.level ?? levelFromEnv() ?? 'info'
  const stream =
    format === 'pretty'
      ? // Synchronous, in this thread: a worker-thread transport can lose the last lines of a crash.
        pretty({ destination, sync: true, colorize: destination.isTTY === true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' })
      : destination
  const base = pino({ level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, stream)
  const logger = new PinoLogger(base)
  return options.bindings === undefined ? logger : logger.child(options.bindings)
}


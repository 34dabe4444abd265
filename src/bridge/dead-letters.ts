/*
 * Backoff for dead letters (pure): a write the database refused is retried after minMs, then
 * doubling, up to maxMs, with ±20% jitter so many refused rows do not retry in one burst.
 */

export function nextAttemptAt(now: number, attempts: number, minMs: number, maxMs: number, random: () => number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempts - 1)))
  return now + Math.round(base * (0.8 + 0.4 * random()))
}

/** SQL errors that say nothing about the row (lock contention, lost connection): retry the whole batch later, never dead-letter. */
export function isTransientSqlError(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown; fatal?: unknown; message?: unknown }
  const code = typeof e?.code === 'string' ? e.code : ''
  if (e?.fatal === true) return true
  if (/^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|NOMEM|INTERRUPT)/.test(code)) return true
  // PostgreSQL: serialization failure, deadlock, lock timeout, admin shutdown, connection errors (08…, 57P…).
  if (/^(40001|40P01|55P03|57P0\d|08\d\d\d|53\d\d\d)$/.test(code)) return true
  // MySQL: lock wait timeout, deadlock, lost connection.
  if (['ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code)) return true
  const message = typeof e?.message === 'string' ? e.message : ''
  return /Connection terminated|not connected|is not open|Client has encountered a connection error|Can't add new command when connection is in closed state/i.test(message)
}

import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import mysql from 'mysql2/promise'
import pg from 'pg'
import type { DialectName } from '../../src/bridge/types.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * Real databases for the bridge tests: a SQLite file in a temp folder, and a fresh database of
 * its own on the local PostgreSQL (127.0.0.1:5432, trust auth) and MariaDB (127.0.0.1:3306,
 * root, empty password) servers, dropped afterwards. Without a server, its tests are skipped
 * with the reason printed — unless SHOAL_REQUIRE_SQL=1 (CI), which makes a missing server fail.
 */

export const PG_ADMIN_URL = process.env.SHOAL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const MYSQL_ADMIN_URL = process.env.SHOAL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
const REQUIRE = process.env.SHOAL_REQUIRE_SQL === '1'

/** A plain SQL client, as a till application or psql would be: its writes are captured. */
export interface SqlClient {
  /** Runs a statement; `?` placeholders in every dialect. */
  run(sql: string, params?: unknown[]): Promise<void>
  rows<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>
  close(): Promise<void>
}

export interface TestDatabase {
  dialect: DialectName
  /** The bridge config's `database` string. */
  database: string
  client(): Promise<SqlClient>
  drop(): Promise<void>
}

function pgPlaceholders(sql: string): string {
  let n = 0
  return sql.replace(/\?/g, () => `$${++n}`)
}

async function pgClient(url: string): Promise<SqlClient> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => undefined)
  await client.connect()
  return {
    run: async (sql, params = []) => void (await client.query(pgPlaceholders(sql), params)),
    rows: async <R>(sql: string, params: unknown[] = []) => (await client.query(pgPlaceholders(sql), params)).rows as R[],
    close: () => client.end(),
  }
}

async function mysqlClient(url: string): Promise<SqlClient> {
  const conn = await mysql.createConnection({ uri: url, dateStrings: true, decimalNumbers: true })
  conn.on('error', () => undefined)
  return {
    run: async (sql, params = []) => void (await conn.query(sql, params)),
    rows: async <R>(sql: string, params: unknown[] = []) => (await conn.query(sql, params))[0] as R[],
    close: () => conn.end(),
  }
}

function sqliteClient(path: string): SqlClient {
  const db = new Database(path, { timeout: 5000 })
  return {
    run: async (sql, params = []) => void db.prepare(sql).run(...params),
    rows: async <R>(sql: string, params: unknown[] = []) => db.prepare(sql).all(...params) as R[],
    close: async () => void db.close(),
  }
}

const availability = new Map<DialectName, Promise<string | null>>()

/** Null when the server answers, else why not. */
export function unavailable(dialect: DialectName): Promise<string | null> {
  let known = availability.get(dialect)
  if (known === undefined) {
    known = (async () => {
      if (dialect === 'sqlite') return null
      try {
        const c = dialect === 'postgres' ? await pgClient(PG_ADMIN_URL) : await mysqlClient(MYSQL_ADMIN_URL)
        await c.close()
        return null
      } catch (error) {
        const why = `${dialect} server not reachable at ${dialect === 'postgres' ? PG_ADMIN_URL : MYSQL_ADMIN_URL}: ${(error as Error).message}`
        if (REQUIRE) throw new Error(`${why} (SHOAL_REQUIRE_SQL=1: a missing server fails the run)`)
        console.warn(`skipping ${dialect} bridge tests: ${why}`)
        return why
      }
    })()
    availability.set(dialect, known)
  }
  return known
}

export const DIALECTS: readonly DialectName[] = ['sqlite', 'postgres', 'mysql']

export async function createDatabase(dialect: DialectName): Promise<TestDatabase> {
  const name = `shoal_t_${randomBytes(5).toString('hex')}`
  if (dialect === 'sqlite') {
    const path = join(await tempDir('shoal-sql-'), 'till.db')
    return { dialect, database: `sqlite:${path}`, client: async () => sqliteClient(path), drop: async () => undefined }
  }
  if (dialect === 'postgres') {
    const admin = await pgClient(PG_ADMIN_URL)
    await admin.run(`CREATE DATABASE ${name}`)
    await admin.close()
    const url = new URL(PG_ADMIN_URL)
    url.pathname = `/${name}`
    return {
      dialect,
      database: url.toString(),
      client: () => pgClient(url.toString()),
      drop: async () => {
        const c = await pgClient(PG_ADMIN_URL)
        await c.run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        await c.close()
      },
    }
  }
  const admin = await mysqlClient(MYSQL_ADMIN_URL)
  await admin.run(`CREATE DATABASE ${name}`)
  await admin.close()
  const url = new URL(MYSQL_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    dialect,
    database: url.toString(),
    client: () => mysqlClient(url.toString()),
    drop: async () => {
      const c = await mysqlClient(MYSQL_ADMIN_URL)
      await c.run(`DROP DATABASE IF EXISTS ${name}`)
      await c.close()
    },
  }
}

/** Polls `check` until it returns without throwing, or fails with its last error after `ms`. */
export async function eventually<T>(check: () => Promise<T> | T, ms = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms
  let last: unknown
  for (let delay = 10; ; delay = Math.min(250, delay * 2)) {
    try {
      return await check()
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms: ${(last as Error)?.message ?? String(last)}`)
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

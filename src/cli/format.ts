import type { BridgeStatus, LoadProgress, MeshStatus, PeerStatus, SyncPeerStatus } from '../status.js'
import type { Row, ShoalStatus } from '../shoal.js'

/** Renders rows as a left-aligned text table with a header, for people (scripts use --json). */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** One cell: strings as they are (one line), everything else as JSON; null as '-'. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return '-'
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return text.replace(/\r?\n/g, '⏎')
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US')
}

/** Peer ids all start alike (12D3KooW…): keep the start to recognise one, the end to tell them apart. */
export function shortPeerId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 4)}…${id.slice(-6)}` : id
}

/** One row as COLUMN / VALUE lines. */
export function formatRow(row: Row): string {
  return formatTable(
    ['COLUMN', 'VALUE'],
    Object.entries(row).map(([column, value]) => [column, formatValue(value)]),
  )
}

/** Rows of one table as a table, columns in the order they first appear. */
export function formatRows(rows: readonly Row[]): string {
  const columns: string[] = []
  for (const row of rows) for (const column of Object.keys(row)) if (!columns.includes(column)) columns.push(column)
  return formatTable(
    columns.map((c) => c.toUpperCase()),
    rows.map((row) => columns.map((c) => formatValue(row[c]))),
  )
}

export function formatTables(status: ShoalStatus): string {
  if (status.tables.length === 0) return 'tables  none yet (define them in the config file, with `shoal define` or defineTable())'
  return formatTable(
    ['TABLE', 'ENGINE', 'PARTITION BY', 'PARTITION', 'ROWS', 'DIGEST'],
    status.tables.flatMap((t) =>
      t.partitions.length === 0
        ? [[t.name, t.engine, t.partitionBy ?? '-', '-', '0', '-']]
        : t.partitions.map((p) => [t.name, t.engine, t.partitionBy ?? '-', p.partition === '' ? '-' : p.partition, String(p.rows), p.digest.slice(0, 16)]),
    ),
  )
}

/** A data folder read directly (no peer running): its identity and tables. */
export function formatOfflineStatus(status: ShoalStatus, name: string | null): string {
  const head = [`peer    ${name ?? '(unnamed)'}  actor ${status.actor}`, `data    ${status.dir}`]
  return status.tables.length === 0 ? [...head, formatTables(status)].join('\n') : [...head, '', formatTables(status)].join('\n')
}

/** `[#####.....] 52% 52,000/100,000 rows stock/1 from 12D3…ab12cd` */
export function formatLoad(p: LoadProgress, barWidth = 20): string {
  const where = `${p.table}${p.partition === '' ? '' : `/${p.partition}`} from ${shortPeerId(p.from)}`
  if (p.expected <= 0) return `[${'.'.repeat(barWidth)}] ${formatCount(p.received)} rows ${where}`
  const share = Math.min(1, p.received / p.expected)
  const filled = Math.floor(share * barWidth)
  const eta = p.etaSeconds === undefined ? '' : `, ${formatDuration(p.etaSeconds)} left`
  return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${Math.floor(share * 100)}% ${formatCount(p.received)}/${formatCount(p.expected)} rows ${where}${eta}`
}

/** 45 s, 3 min 05 s, 2 h 10 min. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`
}

function formatSyncPeer(s: SyncPeerStatus): string {
  const last = s.lastRound
  const round =
    last === null
      ? 'no round yet'
      : `last round ${last.at} ${last.ok ? 'ok' : `failed: ${last.error ?? 'unknown error'}`}, ${last.durationMs} ms, ` +
        `${formatCount(last.rowsReceived)} rows in, ${formatCount(last.rowsSent)} out`
  const t = s.totals
  const totals = `        ${' '.repeat(shortPeerId(s.peer).length)}  in all: ${formatCount(t.rounds)} rounds${t.failedRounds > 0 ? ` (${formatCount(t.failedRounds)} failed)` : ''}, ${formatCount(t.rowsIn)} rows in, ${formatCount(t.rowsOut)} out, ${formatBytes(t.bytesIn)} in, ${formatBytes(t.bytesOut)} out`
  return `        ${shortPeerId(s.peer)}  ${s.state}  ${round}\n${totals}`
}

/** 512 B, 14.2 KiB, 3.1 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

/** A running peer's live status, as `GET /v1/status` returns it. */
export function formatPeerStatus(status: PeerStatus): string {
  const lines = [
    `peer    ${status.name ?? '(unnamed)'}  actor ${status.actor}`,
    `id      ${status.peerId}`,
    `data    ${status.dir}`,
    `http    ${status.http ?? 'off'}`,
    ...status.addresses.map((a, i) => `${i === 0 ? 'listen' : '      '}  ${a}`),
    `peers   ${status.connectedPeers.length === 0 ? 'none connected' : `${status.connectedPeers.length} connected: ${status.connectedPeers.map(shortPeerId).join(', ')}`}`,
    `sync    ${formatCount(status.sync.rounds)} rounds${status.sync.failedRounds > 0 ? ` (${formatCount(status.sync.failedRounds)} failed)` : ''}, ${formatCount(status.sync.rowsRepaired)} rows repaired${formatRepairPaths(status.sync)}`,
    ...status.sync.peers.map(formatSyncPeer),
    ...status.sync.loading.map((p) => `loading ${formatLoad(p)}`),
    ...(status.bridge == null ? [] : ['', formatBridge(status.bridge)]),
    ...(status.mesh == null ? ['mesh    open (anyone who reaches this peer may read and write)'] : formatMesh(status.mesh)),
    '',
    formatTables(status),
  ]
  return lines.join('\n')
}

/** This peer's group and rights in its private mesh, and the peers it refused. */
export function formatMesh(mesh: MeshStatus): string[] {
  const grant = (g: '*' | string[]): string => (g === '*' ? 'all' : g.length === 0 ? '-' : g.join(','))
  const own = mesh.partitions.length === 0 ? '' : `, own partitions ${mesh.partitions.join(',')}`
  return [
    `mesh    ${shortPeerId(mesh.mesh)}  group '${mesh.group}'${own}, admitted until ${mesh.expiresAt || '-'}`,
    `        rules v${mesh.rulesVersion}, ${formatCount(mesh.revocations)} revocations, ${mesh.admittedPeers.length} admitted peers connected`,
    ...mesh.rights.map((r) => `        ${r.table === '*' ? '(other tables)' : r.table}: write ${grant(r.write)}, read ${grant(r.read)}`),
    ...mesh.refusedPeers.slice(-5).map((r) => `refused ${shortPeerId(r.peer)} ${r.reason} at ${r.at}`),
  ]
}

function formatAge(seconds: number | null): string {
  if (seconds === null) return '-'
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : seconds < 120 ? `${seconds.toFixed(1)} s` : `${Math.round(seconds / 60)} min`
}

/** The SQL bridge: database, state, and per table what SymmetricDS would show (captured, pending, written back, dead letters). */
export function formatBridge(bridge: BridgeStatus): string {
  const state = bridge.state === 'running' ? `running, ${bridge.push ? 'push wake-ups' : 'polling'}` : bridge.state
  const lines = [`sql     ${bridge.database} (${bridge.dialect}, ${state})${bridge.error === null ? '' : `: ${bridge.error.replace(/\s+/g, ' ')}`}`]
  const table = formatTable(
    ['TABLE', 'SQL TABLE', 'CAPTURED', 'PENDING', 'OLDEST PENDING', 'WRITTEN BACK', 'DEAD LETTERS'],
    bridge.tables.map((t) => [
      t.table,
      t.sqlTable,
      formatCount(t.captured),
      formatCount(t.pending),
      formatAge(t.oldestPendingSeconds),
      formatCount(t.writtenBack),
      formatCount(t.deadLetters),
    ]),
  )
  lines.push(...table.split('\n').map((l) => `        ${l}`))
  for (const t of bridge.tables) {
    if (t.loading !== null) lines.push(`        loading ${t.table} from SQL: ${formatCount(t.loading.done)}/${formatCount(t.loading.total)} changes`)
    if (t.error !== null) lines.push(`        ${t.table}: not mirrored: ${t.error}`)
  }
  for (const d of bridge.deadLetters) {
    lines.push(`        dead letter ${d.table} ${formatValue(d.key)} (${d.direction}, ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}${d.nextAttempt === null ? '' : `, next ${d.nextAttempt}`}): ${formatValue(d.reason)}`)
  }
  return lines.join('\n')
}

/** How the differing partitions were reconciled, once any were: by the change feed or the digest tree. */
function formatRepairPaths(sync: { partitionsByFeed: number; partitionsByTree: number }): string {
  if (sync.partitionsByFeed + sync.partitionsByTree === 0) return ''
  return `; differing partitions: ${formatCount(sync.partitionsByFeed)} by change feed, ${formatCount(sync.partitionsByTree)} by digest tree`
}

import { ProtocolError, ShoalError } from '../errors.js'
import { SeqRanges } from '../trust/seq-ranges.js'
import type { ChangesetReplica } from './replica.js'
import { request, type Ask, type Progress, type ReconcileOptions, type RoundStats } from './round-io.js'
import { MAX_CHANGESETS_PER_FRAME, MAX_CLOCK_RANGES } from './sync-messages.js'

/** What a round's partition step needs of its session. */
export interface RoundContext {
  ask: Ask
  options: ReconcileOptions
  stats: RoundStats
  /** The size to ask for or send now. */
  pageBytes: () => number
}

/**
 * Private meshes: compare which changesets each side holds (per author, sequence ranges), fetch
 * the ones only the peer has, offer the ones only this side has (if the peer may read them).
 */
export async function exchangeChangesets(round: RoundContext, log: ChangesetReplica, table: string, partition: string, progress: Progress): Promise<void> {
  const theirs = await request(round.ask, { type: 'clock', table, partition }, 'clock')
  const mine = new Map(log.clock(table, partition).map((a) => [a.author, SeqRanges.from(a.ranges)]))
  const remote = new Map(theirs.authors.map((a) => [a.author, SeqRanges.from(a.ranges)]))
  for (const [author, held] of remote) {
    const wanted = held.missingFrom(mine.get(author) ?? new SeqRanges())
    if (wanted.length > 0 && !(await learnAuthor(round, log, author))) continue
    // A member writing outside its rights: asking for those changesets would only have them
    // refused, round after round.
    if (wanted.length > 0 && !log.mayWrite(author, table, partition)) continue
    // Each page is applied while the next one is on its way (as range walks do).
    const ask = (): { asked: Array<[number, number]>; page: ReturnType<typeof request<'changesets'>> } | null => {
      if (wanted.length === 0) return null
      const asked = wanted.slice(0, MAX_CLOCK_RANGES)
      const page = request(round.ask, { type: 'changesets', table, partition, author, ranges: asked, maxBytes: round.pageBytes() }, 'changesets')
      // Awaited on the next turn; until then a failure must not count as unhandled.
      page.catch(() => undefined)
      return { asked, page }
    }
    let next = ask()
    while (next !== null) {
      round.options.signal?.throwIfAborted()
      const res = await next.page
      if (res.next === null) {
        wanted.splice(0, next.asked.length)
      } else {
        if (res.changesets.length === 0) throw new ProtocolError('peer sent an empty page of changesets with more to come')
        // Go on from where the peer stopped: drop the ranges (and the part of one) already sent.
        const from = res.next
        if (from <= wanted[0]![0]) throw new ProtocolError(`peer's page of changesets of ${author} goes on from ${from}, which does not move past ${wanted[0]![0]}`)
        while (wanted.length > 0 && wanted[0]![1] < from) wanted.shift()
        if (wanted.length > 0 && wanted[0]![0] < from) wanted[0] = [from, wanted[0]![1]]
      }
      next = ask()
      if (res.changesets.length > 0) {
        const result = await log.apply(table, partition, res.changesets, round.options.from)
        round.stats.rowsReceived += res.changesets.length
        round.stats.changedHere += result.changed
        round.stats.refused += result.refused
        progress.add(res.changesets.length)
      }
    }
  }
  if (!log.readable(round.options.from, table, partition)) return
  for (const [author, held] of mine) {
    const theyLack = held.missingFrom(remote.get(author) ?? new SeqRanges())
    let ranges = theyLack.slice(0, MAX_CLOCK_RANGES)
    const admission = ranges.length > 0 ? log.admissionOf(author) : null
    while (ranges.length > 0) {
      round.options.signal?.throwIfAborted()
      const page = await log.read(table, partition, author, ranges, round.pageBytes())
      if (page.changesets.length > 0) {
        for (let i = 0; i < page.changesets.length; i += MAX_CHANGESETS_PER_FRAME) {
          const batch = page.changesets.slice(i, i + MAX_CHANGESETS_PER_FRAME)
          const res = await request(round.ask, { type: 'offer', table, partition, changesets: batch, admission }, 'offer')
          round.stats.rowsSent += batch.length
          round.stats.changedThere += res.applied
          round.stats.refused += res.refused
        }
      }
      if (page.next === null) break
      const from = page.next
      ranges = ranges.filter(([, to]) => to >= from).map(([a, b]) => [Math.max(a, from), b] as [number, number])
    }
  }
}

/** Makes sure the author of changesets the peer relays is known here: asks the peer for its admission. */
async function learnAuthor(round: RoundContext, log: ChangesetReplica, author: string): Promise<boolean> {
  if (log.knows(author)) return true
  const res = await request(round.ask, { type: 'admission', peer: author }, 'admission')
  if (res.admission === null) {
    round.stats.errors.push(`changesets of ${author} skipped: the peer holds them but no admission of their author`)
    return false
  }
  try {
    await log.learn(res.admission)
    return true
  } catch (error) {
    if (!(error instanceof ShoalError)) throw error
    round.stats.errors.push(`changesets of ${author} skipped: ${error.message}`)
    return false
  }
}

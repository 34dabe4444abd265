import { Rng } from '../src/sim/core/rng.js'

/*
 * What a fuzz target is and how its inputs are judged.
 *
 * A target owns one entry point (a decoder, the store's remote apply path, the HTTP API…) and,
 * when it has one, a reference dataset in a real store. For each input the runner asks the
 * target to run it and classifies the result:
 *   - changed:   accepted, and allowed to change what is stored (a valid delta, a valid PUT);
 *   - unchanged: accepted without changing anything (a read, an idempotent re-apply);
 *   - refused:   the typed error the entry point documents (ProtocolError, ConfigError, a 4xx…);
 *   - crash:     anything else — another exception, an INTERNAL error answer, a 5xx, a hang over
 *                the deadline, a process crash (the worker dies; see run.ts).
 * "Stored changed" is the integrity check: the target's fingerprint (digest roots and row counts
 * of every partition, which cover every row's bytes) must be equal before and after every input
 * that was not `changed`; one such input in every `fullEvery` is also compared in full (every row
 * as read back, schemas, digests: a row changed under a digest that did not would show there);
 * and after every batch the store's own check() must find no problem.
 */

export type Verdict = 'changed' | 'unchanged' | 'refused'

/** What run() found wrong without an exception (an INTERNAL error answer, a 500). */
export class Crash extends Error {}

export interface TargetSession {
  /** A new input, from the seed pool or mutated; deterministic in `rng`. */
  next(rng: Rng): unknown | Promise<unknown>
  /** Runs one input. Throws (anything) or returns a Crash only for crashes; typed refusals are 'refused'. */
  run(input: unknown): Promise<Verdict | Crash>
  /** A short printable form of an input, for the report. */
  show(input: unknown): string
  /** Cheap summary of what is stored (digest roots, counts); absent for targets without a store. */
  fingerprint?(): string
  /** Full snapshot: every row as read back, and digests. */
  snapshot?(): Promise<string>
  /** Problems the store's own check() finds. */
  check?(): Promise<string[]>
  close(): Promise<void>
}

export interface FuzzTarget {
  name: string
  /** What is fuzzed, one line, for the report. */
  what: string
  /** Share of --inputs this target gets (relative). */
  weight: number
  /** Deadline of one input before it counts as a hang. */
  deadlineMs: number
  open(rng: Rng): Promise<TargetSession>
}

export interface Finding {
  kind: 'crash' | 'hang' | 'stored-changed'
  index: number
  input: string
  detail: string
}

export interface TargetResult {
  target: string
  what: string
  seed: number
  inputs: number
  changed: number
  unchanged: number
  refused: number
  crashes: number
  hangs: number
  storedChanged: number
  /** Refused/unchanged inputs whose fingerprint was compared, and of those, how many in full. */
  verifiedInputs: number
  verifiedFull: number
  ms: number
  findings: Finding[]
}

export interface RunOptions {
  inputs: number
  seed: number
  /** Inputs between runs of the store's check() (default 500). */
  batch?: number
  /** Every this many inputs, one is compared in full: every row read back, before and after (default 50). */
  fullEvery?: number
  /**
   * Every this many inputs the target starts over on a fresh reference (default 20,000): accepted
   * deltas make rows grow, and a store near its row size limits would only slow the run down.
   */
  reopenEvery?: number
  /** Called every so often with inputs done (progress). */
  onProgress?: (done: number) => void
  /** Written before each input (index), so a watchdog in another thread sees progress. */
  heartbeat?: Int32Array
}

const MAX_FINDINGS = 25

function clip(text: string, max = 400): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`
}

function errorText(error: unknown): string {
  if (error instanceof Error) return clip(`${error.name}: ${error.message}${error.stack === undefined ? '' : '\n' + error.stack.split('\n').slice(1, 6).join('\n')}`, 1200)
  return clip(String(error))
}

class Timeout extends Error {}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Timeout(`no result within ${ms} ms`)), ms)))
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}

/** The seed of one target's stream: the run seed and the target's name, so targets are independent. */
export function targetSeed(seed: number, target: string): number {
  return new Rng(seed).fork(target).int(0, 2 ** 31 - 1)
}

/** Runs `inputs` inputs against one target; see the comment at the top for the verdicts. */
export async function runTarget(target: FuzzTarget, options: RunOptions): Promise<TargetResult> {
  const seed = targetSeed(options.seed, target.name)
  const rng = new Rng(seed)
  const started = performance.now()
  const result: TargetResult = {
    target: target.name,
    what: target.what,
    seed,
    inputs: 0,
    changed: 0,
    unchanged: 0,
    refused: 0,
    crashes: 0,
    hangs: 0,
    storedChanged: 0,
    verifiedInputs: 0,
    verifiedFull: 0,
    ms: 0,
    findings: [],
  }
  const note = (finding: Finding): void => {
    if (result.findings.length < MAX_FINDINGS) result.findings.push(finding)
  }
  let session = await target.open(rng.fork('setup'))
  const batch = options.batch ?? 500
  const fullEvery = options.fullEvery ?? 50
  const reopenEvery = options.reopenEvery ?? 20_000
  try {
    for (let i = 0; i < options.inputs; i++) {
      if (i > 0 && i % reopenEvery === 0) {
        if (options.heartbeat !== undefined) Atomics.store(options.heartbeat, 0, -1)
        await session.close()
        session = await target.open(rng.fork(`setup-${i}`))
      }
      if (options.heartbeat !== undefined) Atomics.store(options.heartbeat, 0, i)
      const input = await session.next(rng)
      const before = session.fingerprint?.() ?? null
      let full: string | null = null
      try {
        full = i % fullEvery === 0 && session.snapshot !== undefined ? await session.snapshot() : null
      } catch (error) {
        // The store cannot be read back: something stored before this input broke it. Noted, and
        // the run goes on over a fresh reference.
        result.storedChanged++
        note({ kind: 'stored-changed', index: i, input: '(reading the store back before this input)', detail: errorText(error) })
        await session.close()
        session = await target.open(rng.fork(`setup-after-${i}`))
      }
      let verdict: Verdict | Crash
      try {
        verdict = await withDeadline(session.run(input), target.deadlineMs)
      } catch (error) {
        if (error instanceof Timeout) {
          result.hangs++
          note({ kind: 'hang', index: i, input: session.show(input), detail: error.message })
        } else {
          note({ kind: 'crash', index: i, input: session.show(input), detail: errorText(error) })
        }
        result.crashes++
        result.inputs++
        continue
      }
      result.inputs++
      if (verdict instanceof Crash) {
        result.crashes++
        note({ kind: 'crash', index: i, input: session.show(input), detail: clip(verdict.message, 1200) })
        continue
      }
      result[verdict]++
      if (verdict !== 'changed' && before !== null) {
        result.verifiedInputs++
        const after = session.fingerprint!()
        if (after !== before) {
          result.storedChanged++
          note({ kind: 'stored-changed', index: i, input: session.show(input), detail: `${verdict} input changed digests/counts:\nbefore ${clip(before, 600)}\nafter  ${clip(after, 600)}` })
        } else if (full !== null) {
          result.verifiedFull++
          const now = await session.snapshot!().catch((error: unknown) => `unreadable: ${errorText(error)}`)
          if (now !== full) {
            result.storedChanged++
            note({ kind: 'stored-changed', index: i, input: session.show(input), detail: `${verdict} input changed rows as read back:\nbefore ${clip(full, 600)}\nafter  ${clip(now, 600)}` })
          }
        }
      }
      if ((i + 1) % batch === 0 || i + 1 === options.inputs) {
        options.onProgress?.(i + 1)
        const problems = (await session.check?.().catch((error: unknown) => [`check() failed: ${errorText(error)}`])) ?? []
        if (problems.length > 0) {
          result.storedChanged++
          // With --batch 1 the input named is the one that broke the store.
          note({ kind: 'stored-changed', index: i, input: `(check after a batch; its last input: ${verdict} ${session.show(input)})`, detail: clip(problems.join('\n'), 1200) })
        }
      }
    }
  } finally {
    await session.close()
    result.ms = Math.round(performance.now() - started)
  }
  return result
}

/** Splits a total of inputs over targets by weight (each at least 1). */
export function shares(targets: readonly FuzzTarget[], total: number): number[] {
  const sum = targets.reduce((s, t) => s + t.weight, 0)
  const out = targets.map((t) => Math.max(1, Math.floor((total * t.weight) / sum)))
  out[0]! += Math.max(0, total - out.reduce((s, n) => s + n, 0))
  return out
}

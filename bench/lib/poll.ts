/* Waiting in the benchmarks: by polling a condition against a deadline, never a fixed sleep for a result. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `check` every `everyMs` until it holds; throws naming `what` after `deadlineMs`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 60_000, everyMs = 20): Promise<void> {
  const until = performance.now() + deadlineMs
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for: ${what}`)
    await sleep(everyMs)
  }
}

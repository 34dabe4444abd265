/* The V8 sampling profiler around a timed section (`--cpu-prof-dir`), for finding where a benchmark's time goes. */
import { mkdir, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector'
import { join } from 'node:path'

type Post = (method: string, params: object, callback: (error: Error | null, result?: unknown) => void) => void

/** Runs `fn` under the V8 sampling profiler when `dir` is given, writing `<dir>/<name>.cpuprofile`. */
export async function profiled<T>(dir: string | undefined, name: string, fn: () => Promise<T>, log: (message: string) => void): Promise<T> {
  if (dir === undefined) return fn()
  const session = new Session()
  session.connect()
  const raw = session.post.bind(session) as unknown as Post
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((ok, fail) => raw(method, params, (error, result) => (error === null ? ok(result) : fail(error))))
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 200 })
  await post('Profiler.start')
  try {
    return await fn()
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown }
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
    session.disconnect()
    log(`wrote CPU profile ${join(dir, `${name}.cpuprofile`)}`)
  }
}

import '../src/polyfill.js'
import { parentPort, workerData } from 'node:worker_threads'
import { runTarget } from './harness.js'
import { targetNamed } from './targets/index.js'

/*
 * One target's run in a worker thread, so the main thread can watch it: `heartbeat[0]` is the
 * index of the input being run; a worker whose heartbeat stops moving is hung (even in a
 * synchronous loop), and a worker that dies crashed the process it would have been.
 */

interface Job {
  target: string
  inputs: number
  seed: number
  batch: number
  heartbeat: SharedArrayBuffer
}

const job = workerData as Job
const heartbeat = new Int32Array(job.heartbeat)
// -1 while a target sets up (opening its store, building seeds): watched with a longer deadline.
Atomics.store(heartbeat, 0, -1)
const result = await runTarget(targetNamed(job.target), {
  inputs: job.inputs,
  seed: job.seed,
  batch: job.batch,
  heartbeat,
  onProgress: (done) => parentPort!.postMessage({ type: 'progress', done }),
})
parentPort!.postMessage({ type: 'result', result })

import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'src/cli/bin.ts')

/** The shoal command as a child process, run from the repository root; `env` is added to this process's environment. */
export function shoal(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
}

export interface Finished {
  code: number | null
  stdout: string
  stderr: string
}

export async function runToEnd(args: string[], env: Record<string, string> = {}): Promise<Finished> {
  const child = shoal(args, env)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  return { code, stdout, stderr }
}

/** Runs shoal and expects it to succeed; the failure message shows what it printed. */
export async function runOk(args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await runToEnd(args, env)
  if (result.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

/** Resolves with everything the child printed once `pattern` appears in it (stdout and stderr). */
export async function waitForOutput(child: ChildProcess, pattern: RegExp, deadlineMs = 30_000): Promise<string> {
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${deadlineMs} ms; output so far:\n${out}`)), deadlineMs)
    const onData = (c: Buffer): void => {
      out += c.toString()
      if (pattern.test(out)) {
        clearTimeout(timer)
        resolve(out)
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (!pattern.test(out)) reject(new Error(`exited with ${code} before ${pattern}; output:\n${out}`))
    })
  })
}

/** Sends SIGTERM to a running `shoal start` and waits for its clean stop (no-op once it exited). */
export async function stopPeer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const stopping = waitForOutput(child, /stopped cleanly/)
  child.kill('SIGTERM')
  await stopping
}

/** Tests that run many shoal processes (each loads TypeScript through tsx) get more time. */
export const CHILD_PROCESSES_TIMEOUT_MS = 180_000

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll } from 'vitest'
import { tempDir } from './tempdir.js'

/*
 * A TURN server for WebRTC between test tabs: Debian's coturn on 127.0.0.1 (installed by .ci/run).
 *
 * Why: Chromium never gathers loopback candidates (--allow-loopback-in-peer-connection no longer
 * gives any), so two tabs would connect by the machine's other addresses, and tests use
 * 127.0.0.1 only. With `iceTransportPolicy: 'relay'` a tab's only candidate is an allocation on
 * this server, reached over TCP to 127.0.0.1 and relayed on 127.0.0.1: the real WebRTC stack
 * (ICE, DTLS, SCTP data channels) with every packet on loopback.
 */

export const TURNSERVER = '/usr/bin/turnserver'

export interface Turn {
  /** For BrowserPeerOptions.webrtc: this server only, relay candidates only. */
  webrtc: { iceServers: Array<{ urls: string; username: string; credential: string }>; iceTransportPolicy: 'relay' }
  stop(): Promise<void>
}

/** Whether coturn is here; throws under SHOAL_REQUIRE_BROWSER=1 when it is not. */
export function turnAvailable(): boolean {
  if (existsSync(TURNSERVER)) return true
  const why = `${TURNSERVER} is missing (apt-get install -y coturn)`
  if (process.env.SHOAL_REQUIRE_BROWSER === '1') throw new Error(`${why} (SHOAL_REQUIRE_BROWSER=1: it fails the run)`)
  console.warn(`skipping WebRTC tests: ${why}`)
  return false
}

/** Starts coturn on a free port of 127.0.0.1 and waits until it accepts connections; stopped after the file's tests. */
export async function startTurn(): Promise<Turn> {
  const dir = await tempDir()
  const port = await freePort()
  // Relay endpoints: a range of its own per run, so files running at once do not share one.
  const minPort = 20_000 + Math.floor(Math.random() * 400) * 100
  const args = [
    '-n',
    `--listening-ip=127.0.0.1`,
    `--relay-ip=127.0.0.1`,
    `--listening-port=${port}`,
    `--min-port=${minPort}`,
    `--max-port=${minPort + 99}`,
    // The two tabs' allocations are peers of each other, on 127.0.0.1.
    '--allow-loopback-peers',
    '--lt-cred-mech',
    '--user=shoal:test',
    '--realm=shoal.test',
    '--no-udp',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--no-software-attribute',
    `--userdb=${join(dir, 'turndb')}`,
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    '--log-file=stdout',
    '--simple-log',
  ]
  const child = spawn(TURNSERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)))
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  }
  try {
    await waitForPort(port, child, () => output)
  } catch (error) {
    await stop()
    throw error
  }
  afterAll(stop)
  return {
    webrtc: { iceServers: [{ urls: `turn:127.0.0.1:${port}?transport=tcp`, username: 'shoal', credential: 'test' }], iceTransportPolicy: 'relay' },
    stop,
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const until = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`turnserver exited (${child.exitCode}): ${output()}`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' })
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > until) throw new Error(`turnserver did not listen on 127.0.0.1:${port} within 15 s: ${output()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

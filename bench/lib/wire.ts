/*
 * Bytes on the wire. Every TCP byte a Node process writes (libp2p's noise, yamux, multistream and
 * gossipsub frames, WebSocket frames, HTTP) goes through net.Socket#write, so patching it once counts
 * them all, whoever the library. Counted in total and per local port, so a socket can be attributed
 * to the peer that owns it.
 */
import { Socket } from 'node:net'

const perPort = new Map<number, number>()
let total = 0
let installed = false

/** Starts counting (idempotent). Call before the first socket is written to. */
export function installWireCounter(): void {
  if (installed) return
  installed = true
  const proto = Socket.prototype as unknown as { write: (this: Socket, ...args: unknown[]) => boolean }
  const original = proto.write
  proto.write = function (this: Socket, ...args: unknown[]): boolean {
    const chunk = args[0]
    const n = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.byteLength : 0
    total += n
    const port = this.localPort
    if (port !== undefined) perPort.set(port, (perPort.get(port) ?? 0) + n)
    return original.apply(this, args)
  }
}

/** Every byte written to a socket since the counter was installed. */
export const wireTotal = (): number => total

export type WireMark = ReadonlyMap<number, number>

/** The per-port counts now, to subtract later with `wireSince`. */
export const wireMark = (): WireMark => new Map(perPort)

/** Bytes written since `mark` by sockets whose local port is in `ports` (all sockets with a port when omitted). */
export function wireSince(mark: WireMark, ports?: ReadonlySet<number>): number {
  let sum = 0
  for (const [port, bytes] of perPort) if (ports === undefined || ports.has(port)) sum += bytes - (mark.get(port) ?? 0)
  return sum
}

/** The TCP port of a multiaddr such as `/ip4/127.0.0.1/tcp/40123` (-1 when it has none). */
export function portOf(address: string): number {
  const match = /\/tcp\/(\d+)/.exec(address)
  return match === null ? -1 : Number(match[1])
}

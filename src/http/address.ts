/** Hosts that mean "every interface": clients on this machine reach them through loopback. */
const WILDCARD_HOSTS: Readonly<Record<string, string>> = { '0.0.0.0': '127.0.0.1', '::': '::1' }

/** The URL a local client uses for an API listening on host:port (IPv6 hosts in brackets). */
export function httpUrl(host: string, port: number): string {
  const reachable = WILDCARD_HOSTS[host] ?? host
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`
}

import { execFileSync } from 'node:child_process'

/*
 * A LAN of "hosts" on one machine: Linux network namespaces, each with an eth0 on one bridge,
 * addresses in 198.18.0.0/24 (the benchmarking range, RFC 2544) and no default route, as a site
 * LAN with no uplink. The bridge lives in its own namespace; the test runner reaches the hosts
 * through one more veth (`shoal-run`, 198.18.0.1) into it. Faults are real kernel ones: nft rules
 * dropping all traffic with the other hosts (partition) or a share of packets at random (loss;
 * this kernel has no netem), a tc tbf queue (rate limit).
 */

export const SUBNET = '198.18.0'
export const RUNNER_ADDRESS = `${SUBNET}.1`
const LAN = 'shoal-lan'
const RUNNER_LINK = 'shoal-run'

export interface Host {
  name: string
  ns: string
  address: string
}

function run(command: string, args: readonly string[], input?: string): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) })
}

function ip(...args: string[]): string {
  return run('ip', args)
}

/** Runs `ip …` inside a namespace. */
function nsIp(ns: string, ...args: string[]): string {
  return ip('netns', 'exec', ns, 'ip', ...args)
}

/** Removes everything a previous run may have left (namespaces and the runner's link). */
export function teardown(count = 9): void {
  for (let i = 1; i <= count; i++) {
    try {
      ip('netns', 'del', `shoal-h${i}`)
    } catch {
      // not there
    }
  }
  for (const cleanup of [() => ip('netns', 'del', LAN), () => ip('link', 'del', RUNNER_LINK)]) {
    try {
      cleanup()
    } catch {
      // not there
    }
  }
}

/** Builds the LAN with `count` hosts (198.18.0.11, .12, …). */
export function buildLan(count: number): Host[] {
  teardown()
  ip('netns', 'add', LAN)
  nsIp(LAN, 'link', 'add', 'br0', 'type', 'bridge')
  nsIp(LAN, 'link', 'set', 'br0', 'up')
  nsIp(LAN, 'link', 'set', 'lo', 'up')
  // The runner's way in.
  ip('link', 'add', RUNNER_LINK, 'type', 'veth', 'peer', 'name', 'run-br')
  ip('link', 'set', 'run-br', 'netns', LAN)
  nsIp(LAN, 'link', 'set', 'run-br', 'master', 'br0')
  nsIp(LAN, 'link', 'set', 'run-br', 'up')
  ip('addr', 'add', `${RUNNER_ADDRESS}/24`, 'dev', RUNNER_LINK)
  ip('link', 'set', RUNNER_LINK, 'up')
  const hosts: Host[] = []
  for (let i = 1; i <= count; i++) {
    const host: Host = { name: `h${i}`, ns: `shoal-h${i}`, address: `${SUBNET}.${10 + i}` }
    ip('netns', 'add', host.ns)
    ip('link', 'add', `${host.name}-eth0`, 'type', 'veth', 'peer', 'name', `${host.name}-br`)
    ip('link', 'set', `${host.name}-eth0`, 'netns', host.ns)
    ip('link', 'set', `${host.name}-br`, 'netns', LAN)
    nsIp(LAN, 'link', 'set', `${host.name}-br`, 'master', 'br0')
    nsIp(LAN, 'link', 'set', `${host.name}-br`, 'up')
    nsIp(host.ns, 'link', 'set', `${host.name}-eth0`, 'name', 'eth0')
    nsIp(host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0')
    nsIp(host.ns, 'link', 'set', 'eth0', 'up')
    nsIp(host.ns, 'link', 'set', 'lo', 'up')
    hosts.push(host)
  }
  return hosts
}

/**
 * Cuts a host off the other hosts (nft drops everything to and from them, both ways) or joins it
 * again. The runner still reaches it, to write on the cut-off side.
 */
export function setCut(host: Host, cut: boolean): void {
  nft(host, 'shoal_cut', cut ? `table inet shoal_cut {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ip saddr ${SUBNET}.0/24 ip saddr != ${RUNNER_ADDRESS} drop\n  }\n  chain output {\n    type filter hook output priority 0; policy accept;\n    ip daddr ${SUBNET}.0/24 ip daddr != ${RUNNER_ADDRESS} drop\n  }\n}\n` : null)
}

/** Replaces a host's nft table `name` by `rules` (null: removes it). */
function nft(host: Host, name: string, rules: string | null): void {
  try {
    run('ip', ['netns', 'exec', host.ns, 'nft', 'delete', 'table', 'inet', name])
  } catch {
    // not there
  }
  if (rules !== null) run('ip', ['netns', 'exec', host.ns, 'nft', '-f', '-'], rules)
}

/**
 * Drops `percent` % of the packets a host receives from other hosts, at random (nft numgen); 0
 * removes the rule. The runner's own requests (from RUNNER_ADDRESS) are left alone.
 */
export function setLoss(host: Host, percent: number): void {
  nft(host, 'shoal_loss', percent <= 0 ? null : `table inet shoal_loss {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    iifname "eth0" ip saddr != ${RUNNER_ADDRESS} numgen random mod 100 < ${percent} drop\n  }\n}\n`)
}

/**
 * Limits the link between a host and the other hosts to `kbit` kbit/s both ways (tc tbf on each
 * end); null removes the limit. The runner's own traffic (its HTTP checks) goes around the limit,
 * through a band of its own, so watching the host does not eat its link.
 */
export function setRate(host: Host, kbit: number | null): void {
  for (const [ns, dev, runnerMatch] of [
    [host.ns, 'eth0', 'dst'],
    [LAN, `${host.name}-br`, 'src'],
  ] as const) {
    const tc = (...args: string[]): string => run('ip', ['netns', 'exec', ns, 'tc', ...args])
    try {
      tc('qdisc', 'del', 'dev', dev, 'root')
    } catch {
      // no qdisc yet
    }
    if (kbit === null) continue
    // htb only sorts traffic into two classes (this kernel has no prio qdisc); the limit is tbf.
    tc('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '30')
    tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit')
    tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:30', 'htb', 'rate', '10gbit')
    tc('qdisc', 'add', 'dev', dev, 'parent', '1:30', 'handle', '30:', 'tbf', 'rate', `${kbit}kbit`, 'burst', '16kbit', 'latency', '400ms')
    tc('filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', runnerMatch, `${RUNNER_ADDRESS}/32`, 'flowid', '1:1')
  }
}

/**
 * Bytes and packets that crossed a rate-limited host's link with the other hosts since setRate
 * (what its tbf queues sent: in = towards the host, out = from it); the runner's own traffic is
 * not counted.
 */
export function shapedBytes(host: Host): { in: number; out: number; packetsIn: number; packetsOut: number } {
  const sent = (ns: string, dev: string): { bytes: number; packets: number } => {
    const text = run('ip', ['netns', 'exec', ns, 'tc', '-s', 'qdisc', 'show', 'dev', dev])
    const block = text.split(/\n(?=qdisc )/).find((b) => b.startsWith('qdisc tbf 30:'))
    const m = block === undefined ? null : /Sent (\d+) bytes (\d+) pkt/.exec(block)
    if (m === null) throw new Error(`no rate limit on ${dev} in ${ns}: call setRate first`)
    return { bytes: Number(m[1]), packets: Number(m[2]) }
  }
  const [towards, from] = [sent(LAN, `${host.name}-br`), sent(host.ns, 'eth0')]
  return { in: towards.bytes, out: from.bytes, packetsIn: towards.packets, packetsOut: from.packets }
}

/** A host's TCP segment counters (nstat): sent, received, retransmitted. */
export function tcpSegments(host: Host): { out: number; in: number; retransmitted: number } {
  const text = run('ip', ['netns', 'exec', host.ns, 'nstat', '-az', 'TcpOutSegs', 'TcpInSegs', 'TcpRetransSegs'])
  const value = (name: string): number => Number(new RegExp(`${name}\\s+(\\d+)`).exec(text)?.[1] ?? NaN)
  return { out: value('TcpOutSegs'), in: value('TcpInSegs'), retransmitted: value('TcpRetransSegs') }
}

/** nft from Debian when missing (the loss fault needs it). */
export function ensureNft(): void {
  try {
    run('nft', ['--version'])
  } catch {
    run('apt-get', ['install', '-y', '-q', 'nftables'])
  }
}

import type { Message } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decode, encode } from 'cborg'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNode } from '../../src/net/node.js'
import { GossipReplicator } from '../../src/peer/gossip-replicator.js'
import type { Rng } from '../../src/sim/core/rng.js'
import { encodeDeltaBatch, encodePartitionAnnouncement, PARTITIONS_TOPIC, topicFor, GOSSIP_VERSION } from '../../src/sync/gossip.js'
import { toHex } from '../../src/table/hash.js'
import { validDeltas, type DeltaSeed } from '../deltas.js'
import { Crash, type FuzzTarget, type TargetSession, type Verdict } from '../harness.js'
import { mutateBytes, mutateValue } from '../mutate.js'
import { checkProblems, fingerprint, openReference, REFERENCE_TABLES, snapshot, STORES } from '../reference.js'

/*
 * Gossip messages, delivered to a real GossipReplicator (on a real libp2p node listening on
 * 127.0.0.1, no peers) as gossipsub hands them over after its own checks: signed by one of a few
 * attacker peer ids, on a topic. The replicator decodes them (decodeDeltaBatch,
 * decodePartitionAnnouncement), checks the topic, and merges through the store's remote apply of
 * the reference. It must never throw: refusals are counted by reason, and an INTERNAL one (an
 * untyped error behind it) is a crash. Rate limits are set out of reach so every message is judged.
 */

interface Input {
  topic: string
  signed: boolean
  from: number
  bytes: Uint8Array
}

type Receive = (message: Message, via: string) => Promise<void>

const VOCABULARY = ['deltas', 'partition', ...REFERENCE_TABLES.map((t) => t.name), '_tables', ...STORES, '']

function show(input: unknown): string {
  const i = input as Input
  return `${i.signed ? 'signed' : 'unsigned'} from #${i.from} on ${JSON.stringify(i.topic).slice(0, 80)} ${i.bytes.length} B ${toHex(i.bytes.subarray(0, 160))}`
}

export const gossipMessages: FuzzTarget = {
  name: 'gossip',
  what: 'gossip messages → GossipReplicator receive (decode, topic check, remote apply) on a real libp2p node + LevelDB reference',
  weight: 18,
  deadlineMs: 10_000,
  async open(setup: Rng): Promise<TargetSession> {
    const ref = await openReference('gossip')
    const db = ref.db
    const netDir = await mkdtemp(join(tmpdir(), 'shoal-fuzz-net-'))
    const node = await createNode({ dataDir: netDir, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    const replicator = new GossipReplicator(db.replication(), node, { messagesPerSecond: 1e9, bytesPerSecond: 1e15 })
    replicator.start()
    // The replicator's own handler, as the 'gossipsub:message' event calls it (awaited here, to judge each message).
    const receive = (replicator as unknown as { receive: Receive }).receive.bind(replicator)
    const peers: PeerId[] = []
    for (let i = 0; i < 3; i++) peers.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')))

    const deltas: DeltaSeed[] = await validDeltas(db, setup, 150)
    const seeds: Input[] = []
    for (let i = 0; i < deltas.length; i += 1 + setup.int(0, 3)) {
      const group = deltas.slice(i, i + 4).filter((d) => d.table === deltas[i]!.table && d.partition === deltas[i]!.partition)
      const { table, partition } = deltas[i]!
      seeds.push({ topic: topicFor(table, partition), signed: true, from: 0, bytes: encodeDeltaBatch({ table, partition, deltas: group.map((d) => ({ key: d.key, delta: d.bytes })) }) })
      seeds.push({ topic: PARTITIONS_TOPIC, signed: true, from: 1, bytes: encodePartitionAnnouncement({ table, partition, first: { key: group[0]!.key, delta: group[0]!.bytes } }) })
    }
    const seedBytes = seeds.map((s) => s.bytes)
    const topics = [PARTITIONS_TOPIC, ...replicator.topics(), topicFor('stock', '9'), 'shoal/1/nope/x', '']
    return {
      next(rng: Rng): Input {
        const base = rng.pick(seeds)
        const roll = rng.int(0, 99)
        if (roll < 15) return base
        let bytes = base.bytes
        if (roll < 60) {
          const value = decode(bytes) as unknown
          for (let k = rng.int(1, 3); k > 0; k--) {
            try {
              bytes = encode(mutateValue(rng, value, VOCABULARY))
            } catch {
              bytes = encode([GOSSIP_VERSION, 'deltas'])
            }
          }
        } else if (roll < 92) {
          for (let k = rng.int(1, 3); k > 0; k--) bytes = mutateBytes(rng, bytes, seedBytes)
        } else {
          return { ...base, topic: rng.pick(topics), signed: rng.chance(0.8), from: rng.int(0, peers.length - 1) }
        }
        return { ...base, bytes, from: rng.int(0, peers.length - 1) }
      },
      async run(input: unknown): Promise<Verdict | Crash> {
        const i = input as Input
        const refusedBefore = replicator.refusals.total
        const internalBefore = replicator.refusals.counts().INTERNAL ?? 0
        const appliedBefore = replicator.counters.deltasApplied
        const message: Message = i.signed
          ? { type: 'signed', from: peers[i.from]!, topic: i.topic, data: i.bytes, sequenceNumber: 1n, signature: new Uint8Array(64), key: peers[i.from]!.publicKey! }
          : { type: 'unsigned', topic: i.topic, data: i.bytes }
        await receive(message, peers[i.from]!.toString())
        const internal = (replicator.refusals.counts().INTERNAL ?? 0) - internalBefore
        if (internal > 0) return new Crash(`${internal} refusal(s) for an untyped error (INTERNAL)`)
        if (replicator.counters.deltasApplied > appliedBefore) return 'changed'
        return replicator.refusals.total > refusedBefore ? 'refused' : 'unchanged'
      },
      show,
      fingerprint: () => fingerprint(db),
      snapshot: () => snapshot(db),
      check: () => checkProblems(db),
      async close() {
        replicator.stop()
        await node.stop()
        await ref.close()
        await rm(netDir, { recursive: true, force: true })
      },
    }
  },
}

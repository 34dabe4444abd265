import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeJoinCode } from '../../src/trust/join-code.js'
import { Membership } from '../../src/trust/membership.js'
import { tempDir } from '../helpers/tempdir.js'
import { CHILD_PROCESSES_TIMEOUT_MS, runOk, runToEnd, shoal, stopPeer, waitForOutput } from '../helpers/cli.js'

/** A shipped example config made to run here: its own data folder, loopback only, no mDNS, any free ports, no SQL database. */
async function localConfig(dir: string, name: 'hq' | 'store-1' | 'store-2', bootstrap: string[] = []): Promise<string> {
  const config = JSON.parse(await readFile(`peers/${name}.json`, 'utf8')) as Record<string, unknown>
  delete config.$schema
  delete config.bridge
  const file = join(dir, `${name}.json`)
  await writeFile(file, JSON.stringify({ ...config, data: join(dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', mdns: false, bootstrap }))
  return file
}

async function poll<T>(what: string, attempt: () => Promise<T | undefined>, deadlineMs = 60_000): Promise<T> {
  const deadline = Date.now() + deadlineMs
  for (;;) {
    const value = await attempt()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

describe('shoal id and shoal mesh', () => {
  it('creates a mesh, admits, shows, sets rules and revokes, with clear errors', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const dir = await tempDir()
    const [authority, data] = [join(dir, 'authority'), join(dir, 'store-1')]
    const member = join(data, 'mesh')
    const help = await runOk(['help'])
    for (const verb of ['id ', 'mesh create --dir', 'mesh admit --authority', 'mesh revoke --authority', 'mesh rules --authority', 'mesh show']) expect(help).toContain(verb)

    // The id is there before the first start, and stays.
    const id = (await runOk(['id', '--data', data])).trim()
    expect(id).toMatch(/^12D3KooW\w+$/)

    const created = await runOk(['mesh', 'create', '--dir', authority, '--name', 'test chain', '--rules', 'peers/rules.json'])
    const mesh = /created mesh (12D3KooW\w+)/.exec(created)?.[1]
    expect(mesh).toBeDefined()
    expect(created).toMatch(/keep this folder offline/)

    const admitted = await runOk(['mesh', 'admit', '--authority', authority, '--peer', id, '--group', 'store', '--partitions', '1', '--days', '30', '--out', member])
    expect(admitted).toMatch(new RegExp(`admitted ${id} to mesh ${mesh}`))
    expect(admitted).toMatch(/group store, partitions 1, serial 1/)

    // --data: the member folder inside it, checked against that folder's peer key
    const shown = await runOk(['mesh', 'show', '--data', data])
    expect(shown).toMatch(new RegExp(`mesh\\s+test chain \\(${mesh}\\)`))
    expect(shown).toMatch(/group\s+store\n/)
    expect(shown).toMatch(/partitions\s+1\n/)
    expect(shown).toMatch(/admission\s+serial 1, valid until \S+ \((29|30) days left\)/)
    expect(shown).toMatch(/rules\s+version 1; this peer may:/)
    expect(shown).toMatch(/catalog\s+read: all partitions\s+write: —/)
    expect(shown).toMatch(/sales\s+read: own partitions \(1\)\s+write: own partitions \(1\)/)
    expect(shown).toMatch(/revocations\s+0/)

    // A browser tab: no member folder, a link holding its admission and the rules (no secret)
    const tab = (await runOk(['id', '--data', join(dir, 'tab')])).trim()
    const linked = await runOk(['mesh', 'admit', '--authority', authority, '--peer', tab, '--group', 'store', '--partitions', 's1', '--link', 'http://127.0.0.1:7001/ui/?store=s1#old'])
    const link = /^(http:\/\/127\.0\.0\.1:7001\/ui\/\?store=s1#join=[\w-]+)$/m.exec(linked)?.[1]
    expect(link, linked).toBeDefined()
    expect(linked).not.toMatch(/member folder/)
    const material = decodeJoinCode(new URL(link!).hash.slice('#join='.length))
    expect(material.mesh).toBe(mesh)
    const membership = new Membership(mesh!)
    for (const doc of material.documents) await membership.add(doc)
    expect(membership.member(tab)?.group).toBe('store')
    // the mesh secret is not in it
    const secret = (await readFile(join(authority, 'swarm.key'), 'utf8')).trim().split('\n').pop()!
    expect(secret).toMatch(/^[0-9a-f]{64}$/)
    expect(material.documents.map((d) => Buffer.from(d).toString('hex')).join('')).not.toContain(secret)
    const badLink = await runToEnd(['mesh', 'admit', '--authority', authority, '--peer', tab, '--group', 'store', '--link', 'ftp://x/'])
    expect(badLink.code).toBe(2)
    expect(badLink.stderr).toMatch(/--link must be an http: or https: address/)

    const wrongGroup = await runToEnd(['mesh', 'admit', '--authority', authority, '--peer', id, '--group', 'shop', '--out', member])
    expect(wrongGroup.code).toBe(1)
    expect(wrongGroup.stderr).toMatch(/group 'shop' is not in the mesh's rules \(version 1; groups: hq, store\)/)
    const noPeer = await runToEnd(['mesh', 'admit', '--authority', authority, '--group', 'store'])
    expect(noPeer.code).toBe(2)
    expect(noPeer.stderr).toMatch(/needs --peer ID .* or --config FILE/)

    // Rules version 2 handed to the member folder; then a revocation
    const rules = join(dir, 'rules.json')
    const source = JSON.parse(await readFile('peers/rules.json', 'utf8')) as { tables: Record<string, unknown> }
    source.tables.catalog = { write: { hq: '*', store: 'own' }, read: { '*': '*' } }
    await writeFile(rules, JSON.stringify(source))
    expect(await runOk(['mesh', 'rules', '--authority', authority, '--rules', rules, '--out', member])).toMatch(/rules version 2 signed/)
    const revoked = await runOk(['mesh', 'revoke', '--authority', authority, '--peer', id, '--reason', 'till stolen', '--out', member])
    expect(revoked).toMatch(new RegExp(`revoked ${id} in mesh ${mesh} \\(till stolen\\)`))
    const showRevoked = await runToEnd(['mesh', 'show', '--dir', member])
    expect(showRevoked.code).toBe(1)
    expect(showRevoked.stderr).toMatch(/is revoked \(till stolen/)

    const overview = JSON.parse(await runOk(['mesh', 'show', '--dir', authority, '--json'])) as { mesh: string; rules: { version: number }; admitted: Array<{ peer: string; revoked: boolean }>; revocations: number }
    expect(overview).toMatchObject({ mesh, rules: { version: 2 }, revocations: 1 })
    expect(overview.admitted.map((a) => [a.peer, a.revoked])).toEqual([
      [id, true],
      [tab, false],
    ])

    // Wrong key: the authority folder holding another mesh's key
    const other = join(dir, 'other')
    await runOk(['mesh', 'create', '--dir', other])
    await copyFile(join(other, 'authority.key'), join(authority, 'authority.key'))
    const wrongKey = await runToEnd(['mesh', 'admit', '--authority', authority, '--peer', id, '--group', 'store', '--out', member])
    expect(wrongKey.code).toBe(1)
    expect(wrongKey.stderr).toMatch(/wrong key: .*authority\.key' is the authority key of mesh 12D3KooW\w+, but mesh\.json is for mesh/)
  })

  it('runs the example privately: hq creates the mesh on first start, a store admitted by its config joins and replicates, another peer is not in the mesh', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const dir = await tempDir()
    const hqConfig = await localConfig(dir, 'hq')
    const hq = shoal(['start', '--config', hqConfig])
    try {
      const banner = await waitForOutput(hq, /running; press Ctrl-C/)
      expect(banner).toMatch(/created mesh 12D3KooW/)
      expect(banner).toMatch(/mesh admit --authority \S+authority --config <its config> --group store/)
      const mesh = /mesh (12D3KooW\w+) \(private/.exec(banner)?.[1]
      expect(mesh).toBeDefined()
      const hqAddr = /listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+)/.exec(banner)![1]!

      const storeConfig = await localConfig(dir, 'store-1', [hqAddr])
      // Before admission the store is refused at start, saying how to get admitted.
      const early = await runToEnd(['start', '--config', storeConfig])
      expect(early.code).toBe(2)
      expect(early.stderr).toMatch(/no member folder at .*admit this peer/)

      const admitted = await runOk(['mesh', 'admit', '--authority', join(dir, 'hq', 'authority'), '--config', storeConfig, '--group', 'store'])
      expect(admitted).toMatch(/group store, partitions 1,/)
      const shown = await runOk(['mesh', 'show', '--config', storeConfig])
      expect(shown).toMatch(new RegExp(`mesh\\s+retail example \\(${mesh}\\)`))
      expect(shown).toMatch(/stock\s+read: own partitions \(1\)\s+write: own partitions \(1\)/)

      // Another peer's config pointed at the store's member folder: not in the mesh.
      const impostor = JSON.parse(await readFile(storeConfig, 'utf8')) as Record<string, unknown>
      const impostorConfig = join(dir, 'impostor.json')
      await writeFile(impostorConfig, JSON.stringify({ ...impostor, name: 'impostor', data: join(dir, 'impostor'), mesh: join(dir, 'store-1', 'mesh') }))
      const refused = await runToEnd(['mesh', 'show', '--config', impostorConfig])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/peer 12D3KooW\w+ is not in the mesh: the member folder .* holds the admission of peer/)

      const store = shoal(['start', '--config', storeConfig])
      try {
        const storeBanner = await waitForOutput(store, /running; press Ctrl-C/)
        expect(storeBanner).toMatch(new RegExp(`mesh ${mesh} \\(private`))
        await runOk(['put', 'catalog', 'SKU-1', '{"name": "Umbrella", "price": 12.5}', '--config', hqConfig])
        const row = await poll('the catalog row at the store', async () => {
          const got = await runToEnd(['get', 'catalog', 'SKU-1', '--config', storeConfig, '--json'])
          return got.code === 0 ? (JSON.parse(got.stdout) as { row: unknown }).row : undefined
        })
        expect(row).toMatchObject({ sku: 'SKU-1', name: 'Umbrella', price: 12.5 })
      } finally {
        await stopPeer(store)
      }
    } finally {
      await stopPeer(hq)
    }
  })
})

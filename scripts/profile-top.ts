/*
 * Where a benchmark's time goes, from a V8 CPU profile (`npm run bench… -- --cpu-prof-dir DIR`):
 *
 *   npx tsx scripts/profile-top.ts DIR/remote-yjs.cpuprofile [--top 25] [--match checkRow,settle]
 *
 * prints the functions with the most self time, and for each --match name the share of samples
 * with that function anywhere on the stack (its inclusive time, counted once per sample).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, match: { type: 'string', default: '' } } })
if (positionals.length !== 1) {
  console.error('usage: npx tsx scripts/profile-top.ts FILE.cpuprofile [--top N] [--match name1,name2]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const label = (n: ProfileNode): string => {
  const file = n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')
  return `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`
}

const self = new Map<string, number>()
for (const id of profile.samples) {
  const key = label(byId.get(id)!)
  self.set(key, (self.get(key) ?? 0) + 1)
}
const total = profile.samples.length
const pct = (n: number): string => `${((100 * n) / total).toFixed(1).padStart(5)}%`
console.log(`${total} samples`)
for (const [key, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) console.log(`${pct(n)}  ${key}`)

const names = values.match.split(',').filter((s) => s !== '')
if (names.length > 0) console.log('\ninclusive (share of samples with the function on the stack):')
for (const name of names) {
  let hits = 0
  for (const id of profile.samples) {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      if (byId.get(at)!.callFrame.functionName === name) {
        hits++
        break
      }
    }
  }
  console.log(`${pct(hits)}  ${name}`)
}

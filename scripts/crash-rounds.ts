import '../src/polyfill.js'
import { parseArgs } from 'node:util'
import { crashRounds } from '../test/cli/peer-crash.js'

/*
 * `npm run test:crash [-- --rounds N --seed S --clients C]`: kill -9 rounds against a real
 * `shoal start` (test/cli/peer-crash.ts says what each round does and checks). Exits 1 on the
 * first acknowledged write that is missing after a restart, or a failed `shoal check`.
 */

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20' }, seed: { type: 'string', default: '1' }, clients: { type: 'string', default: '4' } } })
const rounds = Number(values.rounds)
const seed = Number(values.seed)
const clients = Number(values.clients)
for (const [name, n] of [['--rounds', rounds], ['--seed', seed], ['--clients', clients]] as const) {
  if (!Number.isSafeInteger(n) || n < (name === '--seed' ? 0 : 1)) {
    console.error(`${name} must be a ${name === '--seed' ? 'non-negative' : 'positive'} integer`)
    process.exit(2)
  }
}
const started = Date.now()
try {
  const reports = await crashRounds({ rounds, seed, clients, log: (m) => console.log(m) })
  const kills = reports.slice(0, rounds)
  const acknowledged = kills.reduce((s, r) => s + r.acknowledged, 0)
  const inFlight = kills.reduce((s, r) => s + r.inFlight, 0)
  console.log(
    `\n${rounds} kill -9 rounds (seed ${seed}, ${clients} clients): ${acknowledged} acknowledged writes, ${inFlight} cut off in flight, ` +
      `0 acknowledged writes lost (${reports[reports.length - 1]!.verified} verified after the last restart), shoal check clean after every kill; ${Math.round((Date.now() - started) / 1000)} s`,
  )
} catch (error) {
  console.error(`\nFAILED: ${(error as Error).message}`)
  process.exitCode = 1
}

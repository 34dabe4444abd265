#!/usr/bin/env node
// The `shoal` command. The TypeScript sources are compiled to dist/ by `npm install` (prepare).
import { existsSync } from 'node:fs'

const entry = new URL('../dist/src/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  console.error('shoal: dist/ is missing; run `npm install` (or `npm run build`) in the shoal folder first')
  process.exit(1)
}
const { run } = await import(entry.href)
await run(process.argv.slice(2))

/*
 * Writes peers/shoal-config.schema.json from the config's valibot schema: `npm run schema`.
 * test/config.test.ts fails while the committed file differs from what this would write.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { toJsonSchema } from '@valibot/to-json-schema'
import { CONFIG_SCHEMA, CONFIG_SCHEMA_FILE } from '../src/config.js'

export const CONFIG_SCHEMA_PATH = join(fileURLToPath(new URL('..', import.meta.url)), 'peers', CONFIG_SCHEMA_FILE)

/** The JSON Schema text, as committed. */
export function configJsonSchema(): string {
  const schema = toJsonSchema(CONFIG_SCHEMA, {
    // Each object schema sits in a pipe behind a plain-object check (valibot's objects accept
    // arrays): 'output' converts every pipe from its last schema, the object itself.
    typeMode: 'output',
    // Cross-field rules (a key column is among the columns, table names are unique) and the
    // false → null of `http` have no JSON Schema form: editors check shapes, shoal the rest.
    ignoreActions: ['check', 'transform'],
  })
  return JSON.stringify(schema, null, 2) + '\n'
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(CONFIG_SCHEMA_PATH, configJsonSchema())
  console.log(`wrote ${CONFIG_SCHEMA_PATH}`)
}

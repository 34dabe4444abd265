import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { ValidationError } from '../src/errors.js'
import { errorText } from '../src/log.js'
import { entriesOf, fields, integerIn, MAX_SHOWN_CHARS, parseWith, shown } from '../src/validation.js'

const from = { source: 'in.json', what: 'the input', error: (message: string) => new ValidationError(message) }

function messageOf(schema: v.GenericSchema, input: unknown): string {
  try {
    parseWith(schema, input, from)
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError)
    return (error as Error).message
  }
  throw new Error('expected a ValidationError')
}

describe('parseWith', () => {
  const schema = fields({
    peers: v.optional(v.array(fields({ port: integerIn(1, 65535) })), []),
    tags: v.optional(entriesOf(v.string(), v.array(v.string('must be a string')), 'must be an object of tag → [values]'), {}),
  })

  it('returns the output with defaults filled in', () => {
    expect(parseWith(schema, { peers: [{ port: 80 }] }, from)).toEqual({ peers: [{ port: 80 }], tags: {} })
  })

  it('names the source and the path: keys with dots, indexes in brackets', () => {
    expect(messageOf(schema, { peers: [{ port: 80 }, { port: 0 }] })).toBe("in.json: 'peers[1].port' must be an integer from 1 to 65535 (got 0)")
    expect(messageOf(schema, { tags: { a: ['x', 3] } })).toBe("in.json: 'tags.a[1]' must be a string")
    expect(messageOf(schema, 'text')).toBe('in.json: the input must be an object')
    expect(messageOf(schema, { peers: [{ port: 80, host: 'h' }] })).toBe("in.json: 'peers[0].host' is not a known field (allowed: port)")
    expect(messageOf(schema, { peers: [{}] })).toBe("in.json: 'peers[0].port' is required")
  })

  it('refuses arrays where objects are expected (valibot alone would take [] as {})', () => {
    expect(messageOf(schema, [])).toBe('in.json: the input must be an object')
    expect(messageOf(schema, { tags: [] })).toBe("in.json: 'tags' must be an object of tag → [values]")
  })

  it('refuses the keys valibot records would drop silently', () => {
    for (const key of ['__proto__', 'prototype', 'constructor']) {
      expect(messageOf(schema, JSON.parse(`{"tags": {"${key}": []}}`))).toBe("in.json: 'tags' must not use __proto__, prototype, constructor as a key")
    }
  })

  it('keeps hostile values and keys short in messages', () => {
    const key = 'k'.repeat(10_000)
    const message = messageOf(schema, { [key]: 1 })
    expect(message).toContain(`'${'k'.repeat(MAX_SHOWN_CHARS)}…' is not a known field`)
    expect(message.length).toBeLessThan(200)
    expect(shown('x'.repeat(1000))).toHaveLength(MAX_SHOWN_CHARS + 1)
    expect(shown(undefined)).toBe('undefined')
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    expect(shown(cycle)).toBe('[object Object]')
    expect(shown(10n)).toBe('10')
    const bare = Object.create(null) as Record<string, unknown>
    bare.self = bare
    expect(shown(bare)).toBe('(unprintable)')
  })
})

describe('errorText', () => {
  it('gives the message, else the name, the code or the thrown value: never "undefined"', () => {
    expect(errorText(new Error('disk full'))).toBe('disk full')
    expect(errorText(new TypeError())).toBe('TypeError')
    expect(errorText({ code: 'ERR_STREAM_RESET' })).toBe('ERR_STREAM_RESET')
    expect(errorText(undefined)).toBe('undefined')
    expect(errorText('aborted')).toBe('"aborted"')
  })
})

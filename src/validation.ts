import * as v from 'valibot'
import type { ShoalError } from './errors.js'

/*
 * Declarative checks of structured input (config files, scenario files, table schemas) with
 * valibot. Each schema carries its messages, phrased to follow the path of the bad field, so
 * parseWith() can report any issue the same way:
 *   peers/hq.json: 'tables[0].columns.qty' must be one of string, number, … (got "float")
 * Values a message quotes are cut at MAX_SHOWN_CHARS, since the input may be hostile.
 */

/** Longest rendering of a bad value or key inside a message. */
export const MAX_SHOWN_CHARS = 60

/** Parsing stops at the first issue: one message is reported, and a hostile input costs no more. */
const FIRST_ISSUE_ONLY = { abortEarly: true } as const

export type Issue = v.BaseIssue<unknown>

/** A JSON object (not an array, a class instance or null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/**
 * A value as a message shows it: JSON, cut short. Never throws, whatever a peer or a file sent
 * (JSON.stringify throws on a CBOR bigint, String on an object without a prototype).
 */
export function shown(value: unknown): string {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    try {
      text = String(value)
    } catch {
      text = '(unprintable)'
    }
  }
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS)}…` : text
}

/** `tables[0].columns.qty`: keys joined by dots, array indexes in brackets. */
export function issuePath(issue: Issue): string {
  let path = ''
  for (const item of issue.path ?? []) {
    const key = item.key as string | number
    if (typeof key === 'number') path += `[${key}]`
    else path += (path === '' ? '' : '.') + (key.length > MAX_SHOWN_CHARS ? `${key.slice(0, MAX_SHOWN_CHARS)}…` : key)
  }
  return path
}

export interface InputSource {
  /** Where the input came from (a file name), put before every message; none for library calls. */
  source?: string | undefined
  /** The whole input, for a message about the input itself: 'the config'. */
  what: string
  /** The ShoalError subclass for this kind of input. */
  error: (message: string) => ShoalError
}

/** The message for an issue: the source, the field's path (or what the input is), the issue. */
export function issueMessage(issue: Issue, from: Omit<InputSource, 'error'>): string {
  const path = issuePath(issue)
  const subject = path === '' ? from.what : `'${path}'`
  return `${from.source === undefined ? '' : `${from.source}: `}${subject} ${issue.message}`
}

/** Validates `input`, fills in defaults, and throws `from.error` naming the first bad field. */
export function parseWith<S extends v.GenericSchema>(schema: S, input: unknown, from: InputSource): v.InferOutput<S> {
  const result = v.safeParse(schema, input, FIRST_ISSUE_ONLY)
  if (result.success) return result.output
  throw from.error(issueMessage(result.issues[0], from))
}

/**
 * A JSON object with exactly these fields; any other is refused with the list of allowed ones.
 * (valibot's object schemas alone also take arrays, which would pass as an empty object.)
 */
export function fields<E extends v.ObjectEntries>(entries: E, message = 'must be an object') {
  return v.pipe(v.custom<Record<string, unknown>>(isPlainObject, message), strictFields(entries))
}

/** The object part of fields(), for where valibot needs a bare object schema (variant options). */
export function strictFields<E extends v.ObjectEntries>(entries: E) {
  const allowed = Object.keys(entries).join(', ')
  return v.strictObject(entries, (issue) => (issue.expected === 'never' ? `is not a known field (allowed: ${allowed})` : 'is required'))
}

/** Keys valibot's record() drops silently (it guards against prototype pollution): refused here. */
const RESERVED_KEYS = ['__proto__', 'prototype', 'constructor']

/** A JSON object of any keys matching `key`, each value matching `value`. */
export function entriesOf<K extends v.GenericSchema<string, string>, V extends v.GenericSchema>(key: K, value: V, message: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, message),
    v.check((o) => !RESERVED_KEYS.some((k) => Object.hasOwn(o, k)), `must not use ${RESERVED_KEYS.join(', ')} as a key`),
    v.record(key, value),
  )
}

/** An integer in [min, max]. */
export function integerIn(min: number, max: number) {
  const message = (issue: Issue): string => `must be an integer from ${min} to ${max} (got ${shown(issue.input)})`
  return v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message))
}

/** A finite number in [min, max]. */
export function numberIn(min: number, max: number) {
  const message = (issue: Issue): string => `must be a number from ${min} to ${max} (got ${shown(issue.input)})`
  return v.pipe(v.number(message), v.minValue(min, message), v.maxValue(max, message))
}

/** One of a fixed list of strings. */
export function oneOf<const T extends readonly string[]>(options: T) {
  return v.picklist(options, (issue) => `must be one of ${options.join(', ')} (got ${shown(issue.input)})`)
}

/* The benchmarks' command line: `--name` flags and `--name value` options. */

export interface Args {
  /** Everything after the script, as given (for the `command` written with the results). */
  readonly argv: readonly string[]
  flag(name: string): boolean
  option(name: string): string | undefined
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2)): Args {
  return {
    argv,
    flag: (name) => argv.includes(name),
    option: (name) => {
      const i = argv.indexOf(name)
      return i >= 0 ? argv[i + 1] : undefined
    },
  }
}

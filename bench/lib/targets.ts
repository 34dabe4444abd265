/* A benchmark's targets (from the issues and the README) and each engine's verdict against them. */

export interface Target {
  /** What is promised, e.g. `≥ 50,000 remote deltas applied/s`. */
  label: string
  /** The metric it is judged on. */
  key: string
  ok: (value: number) => boolean
  /** How the measured value is shown next to the verdict. */
  show: (value: number) => string
}

export interface TargetReport {
  /** One `- label: engine: MET (value); …` line a target. */
  text: string
  /** target label → engine → MET / MISSED / not measured, as written with the results. */
  json: Record<string, Record<string, string>>
}

/** Judges every target for every engine; `about(engine)` may add what the engine's numbers stand on (e.g. its data set). */
export function targetReport(
  targets: readonly Target[],
  results: Partial<Record<string, Record<string, unknown>>>,
  engines: readonly string[],
  about: (engine: string) => string = () => '',
): TargetReport {
  const json: Record<string, Record<string, string>> = {}
  const lines: string[] = []
  for (const target of targets) {
    const verdicts: Record<string, string> = {}
    const parts: string[] = []
    for (const engine of engines) {
      const v = results[engine]?.[target.key]
      const verdict = typeof v === 'number' ? (target.ok(v) ? 'MET' : 'MISSED') : 'not measured'
      verdicts[engine] = verdict
      parts.push(`${engine}${about(engine)}: ${verdict}${typeof v === 'number' ? ` (${target.show(v)})` : ''}`)
    }
    json[target.label] = verdicts
    lines.push(`- ${target.label}: ${parts.join('; ')}`)
  }
  return { text: lines.join('\n'), json }
}

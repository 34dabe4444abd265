// The partition simulator as a library: `import { runModel, loadScenario } from 'shoal/sim'`.
export { runModel, type RunOptions } from './model/model-runner.js'
export { runReal, type RealRunOptions } from './real/real-runner.js'
export { loadScenario, parseScenario, readScenarioInput, DEFAULT_TABLES, ScenarioError, type FaultSpec, type MeshSpec, type Scenario, type WorkloadSpec } from './core/scenario.js'
export { randomScenario, type RandomScenarioOptions } from './core/random-scenario.js'
export { checkRun, type PeerFinal } from './core/checker.js'
export { renderRunReport, renderSweepReport } from './report/report.js'
export type { FaultWindow, SimSeries, SimSummary, SweepPoint, SweepSummary } from './core/summary.js'
export type { HistoryOp, OpKind } from './core/workload.js'

// The partition simulator as a library: `import { runModel, loadScenario } from 'shoal/sim'`.
export { runModel, type RunOptions } from './model-runner.js'
export { runReal, type RealRunOptions } from './real-runner.js'
export { loadScenario, parseScenario, readScenarioInput, DEFAULT_TABLES, ScenarioError, type FaultSpec, type Scenario, type WorkloadSpec } from './scenario.js'
export { randomScenario, type RandomScenarioOptions } from './random-scenario.js'
export { checkRun, type PeerFinal } from './checker.js'
export { renderRunReport, renderSweepReport } from './report.js'
export type { FaultWindow, SimSeries, SimSummary, SweepPoint, SweepSummary } from './summary.js'
export type { HistoryOp, OpKind } from './workload.js'

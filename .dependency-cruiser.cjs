/*
 * Dependencies run one way (ARCHITECTURE.md):
 *   table → trust → store → sync → facade (shoal.ts, status.ts, config.ts) → bridge → peer / http → cli
 * with net/ beside them (it knows nothing of tables), sim/ on top (only cli/ uses it), and the
 * shared leaves (constants, errors, log, polyfill, validation) usable by all. `npm run lint` runs this check.
 */
const layer = (name, forbidden) => ({
  name: `${name}-imports-upward`,
  comment: `src/${name} must not import ${forbidden.join(', ')} (see ARCHITECTURE.md)`,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: `^src/(${forbidden.join('|')})(/|\\.ts$)` },
})

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'modules must not depend on each other in a cycle',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { pathNot: '^$' }, dependencyTypesNot: ['type-only'] },
    },
    layer('table', ['trust', 'store', 'sync', 'net', 'bridge', 'peer', 'http', 'cli', 'sim', 'shoal', 'status', 'config', 'index']),
    layer('trust', ['store', 'sync', 'net', 'bridge', 'peer', 'http', 'cli', 'sim', 'shoal', 'status', 'config', 'index']),
    layer('store', ['sync', 'net', 'bridge', 'peer', 'http', 'cli', 'sim', 'shoal', 'status', 'config', 'index']),
    layer('sync', ['net', 'bridge', 'peer', 'http', 'cli', 'sim', 'shoal', 'status', 'config', 'index']),
    layer('net', ['table', 'store', 'sync', 'bridge', 'peer', 'http', 'cli', 'sim', 'shoal', 'status', 'config', 'index']),
    layer('bridge', ['net', 'peer', 'http', 'cli', 'sim']),
    layer('http', ['peer', 'cli', 'sim', 'net', 'bridge']),
    layer('peer', ['cli', 'sim']),
    {
      name: 'facade-imports-upward',
      comment: 'the facade (shoal.ts, status.ts, config.ts) must not import what is built on it',
      severity: 'error',
      from: { path: '^src/(shoal|status|config)\\.ts$' },
      to: { path: '^src/(net|bridge|peer|http|cli|sim)/' },
    },
    {
      name: 'sim-core-imports-modes',
      comment: 'src/sim/core (scenario, checker, run skeleton…) is shared by both modes and the report: it must not import them (see ARCHITECTURE.md)',
      severity: 'error',
      from: { path: '^src/sim/core/' },
      to: { path: '^src/sim/(model|real|report)/' },
    },
    {
      name: 'sim-modes-import-each-other',
      comment: 'the model and real-stack simulators share only src/sim/core; the report reads summaries only',
      severity: 'error',
      from: { path: '^src/sim/(model|real|report)/' },
      to: { path: '^src/sim/(model|real|report)/', pathNot: '^src/sim/$1/' },
    },
    {
      name: 'browser-ports-by-build-only',
      comment: 'a .browser.ts module replaces its Node sibling in the browser build (package.json "browser"); code imports the sibling, never it',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '\\.browser\\.ts$' },
    },
    {
      name: 'ui-uses-the-public-browser-api',
      comment: 'the web app (src/ui) is built on the library as any app would be: src/browser.ts only',
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/', pathNot: '^src/(ui/|browser\\.ts$)' },
    },
    {
      name: 'nothing-imports-the-ui',
      comment: 'the web app is bundled on its own (scripts/browser-build.ts)',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/ui/' },
      to: { path: '^src/ui/' },
    },
    {
      name: 'only-cli-uses-sim',
      comment: 'production code never imports the simulator',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(sim|cli)/' },
      to: { path: '^src/sim/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
}

/**
 * The layers of ARCHITECTURE.md, each importing only the ones to its left:
 *   lib ← domain ← db ← capa ← jobs ← app ← server
 * plus: no cycles anywhere, routes reach db/ and jobs/ only through app/*.server.ts facades, and
 * nothing in the production tree imports test code.
 */
const LAYERS = ['lib', 'domain', 'db', 'capa', 'jobs', 'app', 'server'];
const above = (i) => LAYERS.slice(i + 1);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `layer-${layer}`,
      comment: `${layer}/ may import only ${LAYERS.slice(0, i + 1).join(', ')}`,
      severity: 'error',
      from: { path: `^${layer}/` },
      to: { path: `^(${above(i).join('|')})/` },
    })),
    {
      name: 'no-circular',
      comment: 'Import cycles hide the real order of things; break them with a declaration or an explicit list.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'routes-through-facades',
      comment: 'Routes reach db/ and jobs/ only through app/*.server.ts facades.',
      severity: 'error',
      from: { path: '^app/routes/' },
      to: { path: '^(db|jobs|capa)/' },
    },
    {
      name: 'no-test-code-in-production',
      comment: 'Test helpers live in test/ and beside tests, never in the production tree.',
      severity: 'error',
      from: { path: '^(lib|domain|db|capa|jobs|app|server)/', pathNot: '\\.test\\.tsx?$' },
      to: { path: '(^test/|\\.test\\.tsx?$|test-support|test-smtp)' },
    },
    {
      name: 'handlers-load-lazily',
      comment: 'Enqueueing never imports a job handler: only the registry loads them, with import().',
      severity: 'error',
      from: { path: '^(app|server|jobs)/', pathNot: '(^jobs/registry\\.ts$|\\.handler\\.ts$|\\.test\\.tsx?$)' },
      to: { path: '\\.handler\\.ts$', dependencyTypesNot: ['dynamic-import'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|build|public|data|bench/results)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js', '.mjs'] },
  },
};

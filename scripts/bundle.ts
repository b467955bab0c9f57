// Bundles the compiled CLI (dist/cmd/kiln.js) and the packages it uses into one module,
// dist/kiln.js: what `kiln`, the executor image and the tests run. Node then loads one file
// instead of some three hundred; resolving and reading those was a third of a fully cached
// rebuild. Run by `npm run build` after tsc, which stays the type checker.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_EXTERNALS } from './bundle-externals.js';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [join(dist, 'cmd', 'kiln.js')],
  outfile: join(dist, 'kiln.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: [...BUNDLE_EXTERNALS],
  // The bundled CommonJS packages (undici, pino, tar-stream) call require().
  banner: { js: "import { createRequire as kilnCreateRequire } from 'node:module';\nconst require = kilnCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

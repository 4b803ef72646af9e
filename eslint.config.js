import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * Type-aware checks on every TypeScript file, and the dependency direction of the README's
 * "Source layout": tasks, ingest, health and bridge use projection, projection uses redis, nothing imports
 * tasks, ingest, health, rebuild or bridge (only the app's wiring, app.module.ts, app.factory.ts and
 * the OpenAPI document's openapi/api-document.ts, does; rebuild, the other entry point, wires ingest
 * into its own context, and bridge reads the event contract's size limit from ingest), and http,
 * which maps domain errors by their code, imports none of them.
 */

/** An import of `dir/` from anywhere, by relative path. */
const importOf = (dir, message) => ({ regex: String.raw`^(\.{1,2}/)+(.*/)?${dir}/`, message });

const featureModule = (dir) =>
  importOf(dir, `Nothing imports ${dir}/, a feature module; only app.module.ts and app.factory.ts wire it (README, "Source layout").`);
const FEATURES = ['tasks', 'ingest', 'health', 'rebuild', 'bridge'];
const FEATURE_MODULES = FEATURES.map(featureModule);
/** What a feature module may import of the others: rebuild replays through ingest; the bridge produces what ingest accepts. */
const MAY_IMPORT = { rebuild: ['ingest'], bridge: ['ingest'] };
/** What a feature module may not import: the other feature modules. */
const otherFeatures = (dir) => FEATURES.filter((other) => other !== dir && !(MAY_IMPORT[dir] ?? []).includes(other)).map(featureModule);

/** Production code only: a spec may use the real classes of any module (e.g. the error mapping's). */
const dependencyRule = (files, patterns, ignores = []) => ({
  files,
  ignores: ['src/**/*.spec.ts', ...ignores],
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', '.local/', 'coverage/'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-array-sort-compare': ['error', { ignoreStringArrays: true }],
    },
  },
  // The blocks below cover disjoint files: a later block would replace an earlier one's options.
  dependencyRule(['src/**/*.ts'], FEATURE_MODULES, [
    'src/app.module.ts',
    'src/app.factory.ts',
    'src/openapi/api-document.ts',
    ...FEATURES.map((dir) => `src/${dir}/**`),
    'src/redis/**',
  ]),
  ...FEATURES.map((dir) => dependencyRule([`src/${dir}/**/*.ts`], otherFeatures(dir))),
  dependencyRule(['src/redis/**/*.ts'], [
    ...FEATURE_MODULES,
    importOf('projection', 'redis/ is below projection/: projection uses redis, not the other way (README, "Source layout").'),
  ]),
);

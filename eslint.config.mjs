// Lint for every TypeScript and JavaScript file we write: ESLint's and typescript-eslint's
// recommended rules (no type information, so it stays fast enough for `npm test`), and the
// process boundaries of ARCHITECTURE.md (scripts/eslint/processBoundaries.mjs): the gateway
// and the policy server meet only through common/, common/ imports none of them, the
// extension reaches the gateway only over the control channel, webviews share only common/,
// and only the extension (and the suite running inside VS Code) may use `vscode`.
// Formatting is prettier's job, not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { processBoundaries } from './scripts/eslint/processBoundaries.mjs';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.cache/', '.gatehouse/', 'results/', 'test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    plugins: { gatehouse: processBoundaries },
    rules: {
      // `_`-prefixed names are deliberately unused (callback positions, destructuring to drop a key).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'gatehouse/process-boundaries': 'error',
    },
  },
);

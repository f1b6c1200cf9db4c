// Lint for every TypeScript and JavaScript file we write: ESLint's and typescript-eslint's
// recommended rules (no type information, so it stays fast enough for `npm test`).
// Formatting is prettier's job, not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Process boundaries (ARCHITECTURE.md, "Dependencies point one way"): the gateway and the policy
// server are separate programs that meet only through common/; common/ depends on none of them;
// the gateway and the policy server know nothing of the VS Code side, and only the extension (and
// the suite running inside VS Code) may use the `vscode` module, which exists only there.
const SOURCES = ['**/*.{ts,mts,cts,js,mjs,cjs}'];
const NO_VSCODE = { name: 'vscode', message: 'only extension/ (and test/vscode/) runs inside VS Code; keep `vscode` there' };

/** A relative import path reaching into any of `folders` (one path segment, wherever it appears). */
function reachingInto(folders) {
  return `^\\.{1,2}\\x2F(.*\\x2F)?(${folders.join('|')})(\\x2F|$)`;
}

/** The boundary rules for files in `files`: no `vscode`, and no import of anything in `forbidden` (`why` says why not). */
function boundary(files, forbidden = [], why = '') {
  const message = `${why}; shared code belongs in common/`;
  const pattern = reachingInto(forbidden);
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { paths: [NO_VSCODE], patterns: forbidden.length ? [{ regex: pattern, message }] : [] }],
      // `import()` and `require()` are not import declarations, so no-restricted-imports does not see them.
      'no-restricted-syntax': [
        'error',
        ...(forbidden.length
          ? [
              { selector: `ImportExpression[source.value=/${pattern}/]`, message },
              { selector: `CallExpression[callee.name='require'][arguments.0.value=/${pattern}/]`, message },
            ]
          : []),
        { selector: "ImportExpression[source.value='vscode']", message: NO_VSCODE.message },
        { selector: "CallExpression[callee.name='require'][arguments.0.value='vscode']", message: NO_VSCODE.message },
      ],
    },
  };
}

/** The extension may use `vscode`, but not the gateway's or the policy server's code (`escape`: the `../` that leaves extension/). */
function extensionBoundary(files, escape) {
  const pattern = `${escape}(gateway|policy-server|cli)(\\x2F|$)`;
  const message = 'the extension talks to the gateway over the control channel only; shared code belongs in common/';
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: pattern, message }] }],
      'no-restricted-syntax': [
        'error',
        { selector: `ImportExpression[source.value=/${pattern}/]`, message },
        { selector: `CallExpression[callee.name='require'][arguments.0.value=/${pattern}/]`, message },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.cache/', '.gatehouse/', 'results/', 'test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      // `_`-prefixed names are deliberately unused (callback positions, destructuring to drop a key).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  // Later blocks replace a rule's options for their files, so each folder's block is complete.
  { ...boundary(SOURCES), ignores: ['extension/**', 'test/vscode/**'] },
  boundary(['gateway/**'], ['policy-server', 'extension', 'webviews'], 'the gateway may not import the policy server or the VS Code side'),
  boundary(['policy-server/**'], ['gateway', 'extension', 'webviews'], 'the policy server may not import the gateway or the VS Code side'),
  boundary(
    ['common/**'],
    ['gateway', 'policy-server', 'extension', 'webviews', 'cli'],
    'common/ is what the processes share; it imports none of them',
  ),
  // The extension reaches the gateway only as a child process (common/control/); its own
  // `extension/gateway/` folder shares the name, so the rule counts how far a path climbs:
  // out of extension/ is one `../` from its top level, two from a subfolder.
  extensionBoundary(['extension/*.ts'], '^\\.\\.\\x2F'),
  extensionBoundary(['extension/*/*.ts'], '^\\.\\.\\x2F\\.\\.\\x2F'),
  boundary(
    ['webviews/**'],
    ['gateway', 'policy-server', 'extension', 'cli'],
    'a webview runs in a browser sandbox; it shares only common/ with its host',
  ),
);

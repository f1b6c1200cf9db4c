// Bundles every runnable part with esbuild. The extension is CommonJS with `vscode`
// external (VS Code provides it); the gatehouse CLI (cli/gatehouse.ts: the gateway, the
// policy server and their commands) is one self-contained Node program, so VS Code's own
// runtime can run it without node_modules.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { writeThirdPartyNotices } from './thirdPartyNotices.mjs';

const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning', legalComments: 'none' };

// The first three are what ships (VSIX, container image); their metafiles name the bundled packages.
const shipped = await Promise.all([
  build({
    ...common,
    metafile: true,
    entryPoints: ['cli/gatehouse.ts'],
    outfile: 'dist/gatehouse.js',
    format: 'cjs',
    banner: { js: '#!/usr/bin/env node' },
  }),
  build({
    ...common,
    metafile: true,
    entryPoints: ['extension/extension.ts'],
    outfile: 'dist/extension.js',
    format: 'cjs',
    external: ['vscode'],
  }),
  // Webview apps run in the browser sandbox of a webview, one script each.
  build({
    ...common,
    metafile: true,
    platform: 'browser',
    target: 'es2022',
    minify: true,
    format: 'iife',
    entryPoints: { confirm: 'webviews/confirm/confirmApp.ts', audit: 'webviews/audit/auditApp.ts', scopes: 'webviews/scopes/scopesApp.ts' },
    outdir: 'dist/webviews',
  }),
]);
await Promise.all([
  // The suite that runs inside a real VS Code (test/vscode/); mocha comes from node_modules at run time.
  build({
    ...common,
    entryPoints: ['test/vscode/suite/index.ts'],
    outfile: 'dist/vscode-test/suite.js',
    format: 'cjs',
    external: ['vscode', 'mocha'],
  }),
  // Test fixture servers (test/fixtures/*-upstream.ts) start faster bundled than through tsx.
  build({
    ...common,
    entryPoints: readdirSync('test/fixtures')
      .filter((f) => f.endsWith('-upstream.ts'))
      .map((f) => `test/fixtures/${f}`),
    outdir: 'dist/fixtures',
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    banner: {
      js: "import { createRequire as __gatehouseCreateRequire } from 'node:module'; const require = __gatehouseCreateRequire(import.meta.url);",
    },
  }),
]);
chmodSync('dist/gatehouse.js', 0o755);
// The codicon font, which @vscode-elements/elements draws its icons with, ships beside the webview apps.
mkdirSync('dist/webviews', { recursive: true });
for (const file of ['codicon.css', 'codicon.ttf']) copyFileSync(`node_modules/@vscode/codicons/dist/${file}`, `dist/webviews/${file}`);
// esbuild drops the bundled packages' licence comments; their notices ship in one file instead.
writeThirdPartyNotices(
  shipped.map((result) => result.metafile),
  'dist/THIRD-PARTY-NOTICES.txt',
  ['node_modules/@vscode/codicons'], // the font and its CSS, copied beside the webviews above
);

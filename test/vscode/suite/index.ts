/**
 * Entry point of the suite that runs inside a real VS Code extension host (code-server's
 * Node extension host here; `@vscode/test-electron` on machines that can download VS
 * Code). Like test-electron's, it exports `run()`; VS Code calls it and reads its outcome.
 */
import Mocha from 'mocha';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 90_000, color: false, reporter: 'spec' });
  mocha.suite.emit('pre-require', globalThis, 'gatehouse-vscode-suite', mocha);
  await import('./gatehouseExtension.test');
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} test(s) failed inside VS Code`);
}

// The licence notices of every npm package bundled into what ships (the VSIX, the container
// image): esbuild inlines their code, so their licences (MIT and friends require the notice
// to travel with the code) are collected from the bundles' metafiles into one text file.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The package folder an input path lies in (`node_modules/@scope/name/...` -> `node_modules/@scope/name`), nested ones included. */
function packageFolder(input) {
  const parts = input.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) return undefined;
  const length = parts[at + 1]?.startsWith('@') ? 3 : 2;
  return parts.slice(0, at + length).join('/');
}

/** Every licence and notice file of a package (LICENSE, LICENSE-MIT, NOTICE, COPYING, ...), joined. */
function licenceText(folder) {
  const files = readdirSync(folder)
    .filter((name) => /^(licen[cs]e|copying|notice)([.-]|$)/i.test(name))
    .sort();
  return files.length > 0 ? files.map((name) => readFileSync(join(folder, name), 'utf8').trim()).join('\n\n') : undefined;
}

/**
 * Writes `outfile` listing each package that any of `metafiles` took code from, and the
 * package folders in `copied` (files shipped as they are, not bundled), with their licence texts.
 */
export function writeThirdPartyNotices(metafiles, outfile, copied = []) {
  const folders = new Set(copied);
  for (const metafile of metafiles) {
    for (const input of Object.keys(metafile.inputs)) {
      const folder = packageFolder(input);
      if (folder && existsSync(join(folder, 'package.json'))) folders.add(folder);
    }
  }
  const entries = [...folders]
    .map((folder) => {
      const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
      const licence = typeof manifest.license === 'string' ? manifest.license : 'see the text below';
      const text = licenceText(folder) ?? `(no licence file in the package; its package.json says: ${licence})`;
      return { id: `${manifest.name}@${manifest.version}`, licence, text };
    })
    .sort((a, b) => a.id.localeCompare(b.id));
  const unique = [...new Map(entries.map((entry) => [entry.id, entry])).values()];
  const header = `Gatehouse ships code from these ${unique.length} npm packages (bundled, or copied as they are). Their licences follow.\n`;
  const body = unique.map((entry) => `${'='.repeat(78)}\n${entry.id} (${entry.licence})\n${'='.repeat(78)}\n${entry.text}\n`);
  writeFileSync(outfile, [header, ...body].join('\n'));
  return unique.length;
}

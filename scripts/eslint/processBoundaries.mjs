// The process boundaries of ARCHITECTURE.md as an ESLint rule. Every relative module path
// (imports, `export ... from`, `import()`, `require()`, `import x = require()`, type-only
// `import('...')` types) is resolved against the importing file, and the top folder it lands
// in must be one its own top folder may use. Resolving the path, rather than matching its
// text, is what makes `./../../gateway/x`, `../../common/../gateway/x` and files at any depth
// come out right, and lets `extension/gateway/` and `common/cli/` be what they are.
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Top folder -> the top folders its code may not import, and why. */
const FORBIDDEN = {
  gateway: [
    ['policy-server', 'extension', 'webviews', 'cli'],
    'the gateway meets the policy server and the VS Code side only through common/',
  ],
  'policy-server': [
    ['gateway', 'extension', 'webviews', 'cli'],
    'the policy server meets the gateway and the VS Code side only through common/',
  ],
  common: [['gateway', 'policy-server', 'extension', 'webviews', 'cli'], 'common/ is what the processes share; it imports none of them'],
  webviews: [['gateway', 'policy-server', 'extension', 'cli'], 'a webview runs in a browser sandbox; it shares only common/ with its host'],
  extension: [
    ['gateway', 'policy-server', 'cli'],
    'the extension talks to the gateway over the control channel only; shared code belongs in common/',
  ],
};

function topFolder(path) {
  return relative(ROOT, path).split(sep)[0];
}

const rule = {
  meta: {
    type: 'problem',
    schema: [],
    messages: { crossing: '{{source}}: {{why}}', vscode: '`vscode` exists only inside VS Code: keep it in extension/ (and test/vscode/)' },
  },
  create(context) {
    const file = context.filename;
    const own = topFolder(file);
    const mayUseVscode = own === 'extension' || relative(ROOT, file).startsWith(`test${sep}vscode${sep}`);
    const check = (node, source) => {
      if (typeof source !== 'string') return;
      if (source === 'vscode' || source.startsWith('vscode/')) {
        if (!mayUseVscode) context.report({ node, messageId: 'vscode' });
        return;
      }
      if (!source.startsWith('.')) return;
      const rules = FORBIDDEN[own];
      const target = topFolder(resolve(dirname(file), source));
      if (rules && rules[0].includes(target)) context.report({ node, messageId: 'crossing', data: { source, why: rules[1] } });
    };
    const literal = (node) => {
      if (node?.type === 'Literal') return node.value;
      if (node?.type === 'TemplateLiteral' && node.expressions.length === 0) return node.quasis[0].value.cooked;
      if (node?.type === 'TSLiteralType') return literal(node.literal);
      return undefined;
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => check(node, literal(node.source)),
      CallExpression: (node) => {
        if (node.callee.type === 'Identifier' && node.callee.name === 'require') check(node, literal(node.arguments[0]));
      },
      TSExternalModuleReference: (node) => check(node, literal(node.expression)),
      TSImportType: (node) => check(node, literal(node.source ?? node.argument)),
    };
  },
};

export const processBoundaries = { rules: { 'process-boundaries': rule } };

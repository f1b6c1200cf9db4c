/**
 * The Scopes webview's app: per approved server, how its credential is held, the scopes the
 * org's policy grants, token expiry, last use. Text only, never HTML from the host.
 */
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-icon/index.js';
import type { ScopeRow, ScopesHostMessage, ScopesViewMessage } from './scopesProtocol';

declare function acquireVsCodeApi(): { postMessage(message: ScopesViewMessage): void };
const vscode = acquireVsCodeApi();
const body = document.getElementById('rows')!;
const empty = document.getElementById('empty')!;

const CREDENTIAL_WORDS: Record<ScopeRow['credential'], string> = {
  none: 'No credential',
  'user-oauth': 'Your own sign-in (OAuth)',
  'shared-key': 'Shared service key',
  'relay-oauth': 'Your token, held by the policy server',
};

function cell(text: string, className?: string): HTMLElement {
  const element = document.createElement('td');
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** Sign Out for a server the developer signed in to: the gateway deletes its tokens. */
function signOutCell(row: ScopeRow): HTMLElement {
  const element = document.createElement('td');
  if (!row.signedIn) return element;
  const button = document.createElement('vscode-button');
  button.setAttribute('secondary', '');
  button.id = `sign-out-${row.server}`;
  button.textContent = 'Sign Out';
  button.addEventListener('click', () => vscode.postMessage({ type: 'signOut', server: row.server }));
  element.append(button);
  return element;
}

function show(rows: ScopeRow[], focus?: string): void {
  empty.hidden = rows.length > 0;
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement('tr');
      tr.id = `server-${row.server}`;
      if (row.server === focus) tr.classList.add('focus');
      const name = cell(row.title ? `${row.title} (${row.server})` : row.server);
      const state = document.createElement('vscode-badge');
      state.textContent = row.enabled ? 'enabled' : 'available';
      name.append(' ', state);
      tr.append(
        name,
        cell(CREDENTIAL_WORDS[row.credential]),
        cell(row.scopes.length > 0 ? row.scopes.join(' ') : '—', 'scopes'),
        cell(row.heldBy, 'muted'),
        cell(row.tokenExpires ? new Date(row.tokenExpires).toLocaleString() : 'no token held here'),
        cell(row.lastUse ? `${new Date(row.lastUse).toLocaleString()} (${row.calls} call${row.calls === 1 ? '' : 's'})` : 'never'),
        signOutCell(row),
      );
      return tr;
    }),
  );
  if (focus) document.getElementById(`server-${focus}`)?.scrollIntoView({ block: 'center' });
}

window.addEventListener('message', (event: MessageEvent<ScopesHostMessage>) => {
  if (event.data.type === 'show') show(event.data.rows, event.data.focus);
});
vscode.postMessage({ type: 'ready' });

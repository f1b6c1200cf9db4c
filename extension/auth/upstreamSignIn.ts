/**
 * The extension's part of per-user upstream OAuth (the gateway is the OAuth client,
 * gateway/upstreamAuth/): it asks the developer, in words, before a browser opens on a
 * server's sign-in page, and keeps the developer's upstream credentials in SecretStorage.
 * Both requests come from the gateway over the control channel and are checked again
 * here: the URL must be https (http only on loopback) with nothing a shell could misread,
 * and only keys under `upstream-oauth/` can be read or written.
 */
import * as vscode from 'vscode';
import {
  CREDENTIAL_KEY_PREFIX,
  type AuthorizeParams,
  type CredentialParams,
  type CredentialResult,
} from '../../common/control/controlProtocol';
import { authorizationPrompt } from './upstreamSignInPrompt';

const OPS = new Set(['get', 'set', 'delete']);

function isCredentialParams(value: unknown): value is CredentialParams {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const p = value as Record<string, unknown>;
  return (
    Object.keys(p).every((key) => key === 'op' || key === 'key' || key === 'value') &&
    typeof p.op === 'string' &&
    OPS.has(p.op) &&
    typeof p.key === 'string' &&
    p.key.startsWith(CREDENTIAL_KEY_PREFIX) &&
    p.key.length <= 400 &&
    (p.value === undefined || (typeof p.value === 'string' && p.value.length <= 256 * 1024))
  );
}

export class UpstreamSignIn {
  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** Answers `gatehouse/authorize`: resolves once the browser was sent, rejects if the developer declined. */
  async authorize(params: AuthorizeParams): Promise<Record<string, never>> {
    const { message, url } = authorizationPrompt(params);
    const choice = await vscode.window.showInformationMessage(message, 'Sign In', 'Not Now');
    if (choice !== 'Sign In') throw new Error('you chose not to sign in');
    // Only ever opened, never run; the answer returns to the gateway's loopback redirect.
    if (!(await vscode.env.openExternal(vscode.Uri.parse(url.href, true)))) throw new Error('the browser was not opened');
    this.log.info(`sign-in to ${params.server} opened in the browser (${url.host})`);
    return {};
  }

  /** Answers `gatehouse/credential` from SecretStorage. */
  async credential(params: CredentialParams): Promise<CredentialResult> {
    if (!isCredentialParams(params)) throw new Error('gatehouse/credential: malformed request or a key outside upstream-oauth/');
    const { op, key, value } = params;
    if (op === 'get') {
      const kept = await this.secrets.get(key);
      return kept === undefined ? {} : { value: kept };
    }
    if (op === 'set') {
      if (value === undefined) throw new Error('gatehouse/credential set needs a value');
      await this.secrets.store(key, value);
    } else {
      await this.secrets.delete(key);
    }
    return {};
  }
}

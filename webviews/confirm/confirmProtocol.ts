/**
 * Messages between the Confirm webview and its host (extension/confirm/confirmPanel.ts).
 * The webview says `ready` once it listens; the host then sends the call to show; the
 * webview answers once with the reviewer's decision.
 */
import type { ConfirmParams } from '../../common/control/controlProtocol';

export type ConfirmHostMessage = { type: 'show'; call: ConfirmParams; deadline: number };

export type ConfirmViewMessage = { type: 'ready' } | { type: 'answer'; decision: 'approve' | 'deny' };

export function isConfirmViewMessage(value: unknown): value is ConfirmViewMessage {
  if (typeof value !== 'object' || value === null) return false;
  const message = value as { type?: unknown; decision?: unknown };
  return message.type === 'ready' || (message.type === 'answer' && (message.decision === 'approve' || message.decision === 'deny'));
}

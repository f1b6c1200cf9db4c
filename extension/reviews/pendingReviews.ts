/**
 * "Pending reviews" in the Gatehouse sidebar: calls other people's gateways queued for a
 * second person's review that this user may decide (the policy server decides who may;
 * a requester never sees their own). Approve and Deny are inline actions. Refreshed every
 * 15 s while managed, and on demand; nothing is fetched during activation itself.
 */
import * as vscode from 'vscode';
import { POLICY_SERVER_PATHS, type ReviewListResponse, type ReviewRecord, type ReviewResponse } from '../../common/policy/policyServerApi';
import { Disposable } from '../lifecycle';
import { describeError } from '../../common/log/logger';

const REFRESH_MS = 15_000;
const REQUEST_TIMEOUT_MS = 10_000;

export interface ReviewServer {
  url: string;
  /** The user's IdP token (VS Code sign-in, or the token file). */
  token: () => Promise<string>;
}

export class PendingReviewsView extends Disposable implements vscode.TreeDataProvider<ReviewRecord> {
  private readonly changed = this._register(new vscode.EventEmitter<void>());
  readonly onDidChangeTreeData = this.changed.event;
  private reviews: ReviewRecord[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: () => ReviewServer | undefined,
    private readonly log: vscode.LogOutputChannel,
  ) {
    super();
    this.timer = setTimeout(() => void this.refresh(), 0);
  }

  get pending(): readonly ReviewRecord[] {
    return this.reviews;
  }

  getChildren(element?: ReviewRecord): ReviewRecord[] {
    return element ? [] : this.reviews;
  }

  getTreeItem(review: ReviewRecord): vscode.TreeItem {
    const who = review.requester.email ?? review.requester.sub;
    const item = new vscode.TreeItem(`${who}: ${review.tool} on ${review.server}`, vscode.TreeItemCollapsibleState.None);
    item.id = review.id;
    item.description = `${review.rule}, until ${new Date(review.expiresAt).toLocaleTimeString()}`;
    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendText(
      `${who} asks to run ${review.tool} on ${review.server}.\nRule ${review.rule}${review.reason ? `: ${review.reason}` : ''}\n`,
    );
    tooltip.appendCodeblock(JSON.stringify(review.arguments, null, 2), 'json');
    item.tooltip = tooltip;
    item.iconPath = new vscode.ThemeIcon('question');
    item.contextValue = 'gatehouse.review';
    return item;
  }

  /** Fetches the reviews this user may decide; failures go to the log and keep the last list. */
  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    const server = this.server();
    if (server) {
      try {
        this.reviews = (await this.call<ReviewListResponse>(server, 'GET', POLICY_SERVER_PATHS.reviews)).reviews;
      } catch (error) {
        this.log.warn(`could not fetch pending reviews: ${describeError(error)}`);
      }
      if (this.isDisposed) return; // disposed while fetching: no more polls with the user's token
      this.timer = setTimeout(() => void this.refresh(), REFRESH_MS);
    } else {
      this.reviews = [];
    }
    this.changed.fire();
  }

  async decide(review: ReviewRecord | undefined, decision: 'approve' | 'deny'): Promise<void> {
    const server = this.server();
    if (!review || !server) return;
    try {
      const { review: decided } = await this.call<ReviewResponse>(
        server,
        'POST',
        `${POLICY_SERVER_PATHS.reviews}/${encodeURIComponent(review.id)}/decision`,
        { decision },
      );
      void vscode.window.showInformationMessage(
        `Gatehouse: ${decided.state} ${decided.tool} on ${decided.server} for ${decided.requester.email ?? decided.requester.sub}.`,
      );
    } catch (error) {
      void vscode.window.showErrorMessage(`Gatehouse could not ${decision} the review: ${describeError(error)}`);
    }
    await this.refresh();
  }

  override dispose(): void {
    clearTimeout(this.timer);
    super.dispose();
  }

  private async call<T>(server: ReviewServer, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const token = await server.token();
    const response = await fetch(new URL(path.replace(/^\//, ''), server.url.endsWith('/') ? server.url : `${server.url}/`), {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      redirect: 'error',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const parsed = (await response.json().catch(() => ({}))) as T & { message?: string };
    if (!response.ok) throw new Error(parsed.message ?? `HTTP ${response.status}`);
    return parsed;
  }
}

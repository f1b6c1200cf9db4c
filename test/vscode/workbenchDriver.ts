/**
 * The person at the keyboard for the real-VS-Code suite, whichever VS Code hosts it. The
 * suite (test/vscode/suite/) prints console lines; the host's runner hands each line here:
 * `GATEHOUSE_SCREENSHOT <name>` (screenshot, checked: the expected element visible, not
 * blank; kept in test-output/vscode/), `GATEHOUSE_CONFIRM <approve|deny>` (wait for the
 * Confirm webview, screenshot it, press that button as a person would), `GATEHOUSE_METRIC
 * <name> <value>` (kept for `npm run bench -- extension`).
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { describeError } from '../../common/log/logger';

const REPO = resolve(__dirname, '../..');
export const OUTPUT = join(REPO, 'test-output/vscode');

/** What each screenshot must show, as a selector in the workbench. */
const EXPECTED: Record<string, { selector: string; text: RegExp; inWebview?: true }> = {
  // The view's own header is hidden while it is the container's only view; its rows are not.
  sidebar: { selector: '.part.sidebar .monaco-list-row', text: /needs confirmation/ },
  confirm: { selector: 'h1', text: /Run "env" on probe\?/, inWebview: true },
  audit: { selector: '#status', text: /of 100,000 events/, inWebview: true },
  scopes: { selector: 'tr', text: /Probe \(probe\)/, inWebview: true },
  reviews: { selector: '.part.sidebar .monaco-list-row', text: /bob@example\.com: pid on probe/ },
};

export class WorkbenchDriver {
  private readonly pending: Array<Promise<void>> = [];
  private readonly metrics: Record<string, number> = {};

  constructor(private readonly page: Page) {
    mkdirSync(OUTPUT, { recursive: true });
  }

  /** One line the suite printed inside VS Code. */
  consoleLine(line: string): void {
    process.stdout.write(`${line}\n`);
    const shot = /GATEHOUSE_SCREENSHOT (\w+)/.exec(line);
    if (shot) this.track(takeScreenshot(this.page, shot[1]!));
    const metric = /GATEHOUSE_METRIC (\w+) ([0-9.]+)/.exec(line);
    if (metric) this.metrics[metric[1]!] = Number(metric[2]);
    const confirm = /GATEHOUSE_CONFIRM (approve|deny)/.exec(line);
    if (confirm) this.track(answerConfirm(this.page, confirm[1] as 'approve' | 'deny'));
    const signIn = /GATEHOUSE_SIGNIN (\w+)/.exec(line);
    if (signIn) this.track(signInAtIdp(this.page, signIn[1]!));
    const upstream = /GATEHOUSE_UPSTREAM_SIGNIN (\w+) (\w+)/.exec(line);
    if (upstream) this.track(signInToUpstream(this.page, upstream[1]!, upstream[2]!));
  }

  /** A step whose failure is reported by `finish()`, not as an unhandled rejection now. */
  private track(step: Promise<void>): void {
    step.catch((error: unknown) => process.stderr.write(`driver step failed: ${String(error)}\n`));
    this.pending.push(step);
  }

  /** After the suite: writes the metrics and says whether every screenshot was taken and passed its check. */
  async finish(): Promise<boolean> {
    writeFileSync(join(OUTPUT, 'metrics.json'), JSON.stringify(this.metrics, null, 2));
    const problems = (await Promise.allSettled(this.pending)).flatMap((step) => (step.status === 'rejected' ? [String(step.reason)] : []));
    for (const problem of problems) process.stderr.write(`screenshot check failed: ${problem}\n`);
    const missing = Object.keys(EXPECTED).filter((name) => !safeExists(join(OUTPUT, `${name}.png`)));
    for (const name of missing) process.stderr.write(`screenshot ${name} was never taken\n`);
    return problems.length === 0 && missing.length === 0;
  }
}

/** The frame of the Confirm webview once its question is shown (webviews are nested iframes). */
function confirmFrame(page: Page): Promise<Frame> {
  return webviewFrame(page, '#actions:not([hidden]) #approve:not([disabled])');
}

/** The webview frame showing `selector` with `text` (each webview is its own nested iframe). */
export async function webviewFrame(page: Page, selector: string, text?: RegExp): Promise<Frame> {
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    for (const frame of page.frames()) {
      const found = frame.locator(selector);
      if (await (text ? found.filter({ hasText: text }) : found).count().catch(() => 0)) return frame;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no webview showed ${selector}${text ? ` with ${text}` : ''} within 30 s`);
}

/** At the local IdP's login page (a browser tab): types the user name, signs in, waits for the extension's "signed in" page. */
export async function loginAtIdp(login: Page, user: string, screenshot?: string): Promise<void> {
  try {
    await login.locator('#login').fill(user, { timeout: 30_000 });
  } catch (error) {
    await login.screenshot({ path: join(OUTPUT, 'sign-in-failed.png') }).catch(() => undefined);
    throw new Error(`the IdP's login page did not show (the tab is at ${login.url()}): ${describeError(error)}`, { cause: error });
  }
  if (screenshot) await login.screenshot({ path: screenshot });
  await login.locator('#sign-in').click();
  await login.getByText('You are signed in to Gatehouse').waitFor({ timeout: 30_000 });
  await login.close();
}

/**
 * The person at the IdP: VS Code asks whether Gatehouse may sign in and whether to open the
 * browser (buttons answered as they appear), the IdP's login page opens in a new tab, the
 * user name is typed and sent, and the tab lands on the extension's loopback page.
 */
async function signInAtIdp(page: Page, user: string): Promise<void> {
  const tab = page.context().waitForEvent('page', { timeout: 60_000 });
  let answering = true;
  const answerPrompts = (async () => {
    while (answering) {
      for (const name of ['Allow', 'Open']) {
        const button = page.getByRole('button', { name, exact: true });
        if (await button.count().catch(() => 0))
          await button
            .first()
            .click()
            .catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  try {
    await loginAtIdp(await tab, user, join(OUTPUT, 'sign-in.png'));
    process.stdout.write(`sign-in: ${user} signed in at the IdP\n`);
  } finally {
    answering = false;
    await answerPrompts;
  }
}

/**
 * The person asked to sign in to an OAuth-protected server: the extension's notification
 * ("<title> needs you to sign in at <host>") is answered Sign In, the IdP opens in a new tab
 * (already signed in there, or the login page when not), and the tab lands on the gateway's
 * loopback page.
 */
async function signInToUpstream(page: Page, user: string, title: string): Promise<void> {
  const toast = page.locator('.notification-toast').filter({ hasText: new RegExp(`${title} needs you to sign in at`) });
  await toast.first().waitFor({ state: 'visible', timeout: 60_000 });
  const tab = page.context().waitForEvent('page', { timeout: 60_000 });
  await page.screenshot({ path: join(OUTPUT, 'upstream-sign-in.png') });
  await toast.first().getByRole('button', { name: 'Sign In', exact: true }).click();
  const opened = await tab;
  const done = opened.getByText(`You are signed in to ${title}`);
  const login = opened.locator('#login');
  await Promise.race([done.waitFor({ timeout: 60_000 }), login.waitFor({ timeout: 60_000 })]);
  if (await login.count()) {
    await login.fill(user);
    await opened.locator('#sign-in').click();
    await done.waitFor({ timeout: 30_000 });
  }
  await opened.close();
  process.stdout.write(`upstream sign-in: ${user} signed in to ${title}\n`);
}

/** Waits for the Confirm prompt, screenshots the first one, and presses the button a person would. */
async function answerConfirm(page: Page, decision: 'approve' | 'deny'): Promise<void> {
  const frame = await confirmFrame(page);
  if (!safeExists(join(OUTPUT, 'confirm.png'))) await takeScreenshot(page, 'confirm', frame);
  // Deny by keyboard (it has the focus), Approve by mouse: both ways a person answers.
  if (decision === 'deny') await frame.locator('#deny').press('Enter');
  else await frame.locator('#approve').click();
  process.stdout.write(`confirm: pressed ${decision}\n`);
}

/** Saves the screenshot and checks it: the expected element is on screen and the image is not blank. */
async function takeScreenshot(page: Page, name: string, frame?: Frame): Promise<void> {
  const expected = EXPECTED[name];
  if (!expected) throw new Error(`no expectation for screenshot "${name}"`);
  const scope = expected.inWebview ? (frame ?? (await webviewFrame(page, expected.selector, expected.text))) : page;
  await scope.locator(expected.selector).filter({ hasText: expected.text }).first().waitFor({ state: 'visible', timeout: 15_000 });
  const path = join(OUTPUT, `${name}.png`);
  const png = await page.screenshot({ path });
  // A blank (single-colour) 1400x900 PNG compresses to a few KB; the workbench is far larger.
  if (png.length < 20_000) throw new Error(`${path} looks blank (${png.length} bytes)`);
  process.stdout.write(`screenshot ${name}: ${path} (${Math.round(png.length / 1024)} KB)\n`);
}

function safeExists(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

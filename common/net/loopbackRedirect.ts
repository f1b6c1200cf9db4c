/**
 * The redirect end of an OAuth authorization on this machine (RFC 8252): a server on
 * 127.0.0.1, a random port, one path (/callback), one answer carrying the flow's own
 * `state`, then closed. Requests without that state (a local program or web page guessing
 * the port, a second delivery of the same answer) get a 404 and cannot end or replay the
 * flow. Used by the extension's sign-in and the gateway's upstream OAuth.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LoopbackRedirect {
  /** `http://127.0.0.1:<port>/callback` */
  readonly redirectUri: string;
  /** The callback URL the browser brought back; rejects after `timeoutMs` or on `signal`. */
  answer(timeoutMs: number, signal?: AbortSignal): Promise<URL>;
  close(): void;
}

export interface RedirectWords {
  /** Shown in the browser after a good answer. */
  done: string;
  /** Shown when the authorization server answered with an error. */
  failed: string;
  /** The rejection when the time is up or the flow was cancelled. */
  timedOut: () => Error;
  cancelled: () => Error;
}

/**
 * `preferredPort`: listen there if it is free (a client registered with that redirect URI
 * keeps working where servers compare redirect URIs exactly), else on a random port.
 */
export async function listenForRedirect(state: string, words: RedirectWords, preferredPort = 0): Promise<LoopbackRedirect> {
  let deliver: (url: URL) => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const answered = new Promise<URL>((resolve, reject) => {
    deliver = resolve;
    fail = reject;
  });
  answered.catch(() => undefined);
  let done = false;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    if (req.method !== 'GET' || url.pathname !== '/callback' || url.searchParams.get('state') !== state || done) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found.');
      return;
    }
    done = true;
    const failed = url.searchParams.has('error');
    res
      .writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'",
      })
      .end(
        `<!DOCTYPE html><title>Gatehouse</title><p>${failed ? words.failed : words.done} You can close this tab and return to VS Code.</p>`,
      );
    deliver(url);
    server.close();
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen(preferredPort);
  } catch (error) {
    if (preferredPort === 0) throw error;
    await listen(0);
  }
  return {
    redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
    answer(timeoutMs, signal) {
      const timer = setTimeout(() => fail(words.timedOut()), timeoutMs);
      signal?.addEventListener('abort', () => fail(words.cancelled()), { once: true });
      return answered.finally(() => clearTimeout(timer));
    },
    close() {
      done = true;
      server.closeAllConnections();
      server.close();
    },
  };
}

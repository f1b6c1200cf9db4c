/**
 * The policy server suite (shared by the file-store run in test/integration/policyServer.test.ts
 * and the PostgreSQL run in test/scale/): the policy server as a real process (dist/gatehouse.js policy-server) against a real
 * local OIDC provider: publishing and its refusals, history / diff / rollback, signed
 * per-user bundles verified against the served JWKS, ETag revalidation, revocation and
 * publish pushed over the event stream, key rotation with overlap, and the
 * `gatehouse policy` CLI.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createParser } from 'eventsource-parser';
import { decodeJwt, decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import { request } from 'undici';
import { createAuditEventId, type AuditEvent } from '../../common/audit/auditEvent';
import { verifyPolicyBundle } from '../../common/policy/policyBundle';
import type { PolicyHistoryResponse, PolicyServerReadyLine } from '../../common/policy/policyServerApi';
import { SigningKeyRing } from '../../policy-server/keys/signingKeyRing';
import { freePort, NODE, REPO } from '../support/gatewayHarness';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';

const GATEHOUSE = join(REPO, 'dist/gatehouse.js');
const EXAMPLE_POLICY = join(REPO, 'examples/org-policy.yaml');

interface RunningServer {
  ready: PolicyServerReadyLine;
  child: ChildProcess;
  dataDir: string;
  stderr(): string;
  stop(): Promise<void>;
}

async function startServer(idp: LocalIdp, dataDir: string, extraArgs: string[] = []): Promise<RunningServer> {
  const child = spawn(
    NODE,
    [
      GATEHOUSE,
      'policy-server',
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--oidc-issuer',
      idp.issuer,
      '--oidc-audience',
      idp.audience,
      ...extraArgs,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ready = await new Promise<PolicyServerReadyLine>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`policy server not ready in 20 s: ${stderr}`));
    }, 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as PolicyServerReadyLine;
      if (parsed.event === 'ready') {
        clearTimeout(timer);
        resolve(parsed);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`policy server exited with ${code}: ${stderr}`));
    });
  });
  return {
    ready,
    child,
    dataDir,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [GATEHOUSE, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** An open `/v1/events` stream that records every event with the time it arrived. */
interface EventStream {
  status: number;
  events: Array<{ event: string; data: Record<string, unknown>; at: number }>;
  ended: boolean;
  next(
    predicate: (e: { event: string; data: Record<string, unknown> }) => boolean,
    timeoutMs?: number,
  ): Promise<{ event: string; data: Record<string, unknown>; at: number }>;
  close(): void;
}

async function openEvents(url: string, token: string): Promise<EventStream> {
  const aborter = new AbortController();
  const response = await request(`${url}/v1/events`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: aborter.signal,
  });
  const stream: EventStream = {
    status: response.statusCode,
    events: [],
    ended: false,
    async next(predicate, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = stream.events.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(stream.events)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close: () => aborter.abort(),
  };
  const parser = createParser({
    onEvent: (e) =>
      stream.events.push({ event: e.event ?? 'message', data: JSON.parse(e.data) as Record<string, unknown>, at: Date.now() }),
  });
  void (async () => {
    try {
      for await (const chunk of response.body) parser.feed(chunk.toString());
    } catch {
      /* aborted */
    }
    stream.ended = true;
  })();
  return stream;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read field by field; a missing field fails its assertion
type Reply = { status: number; headers: Headers; text: string; json: any };

function api(url: string) {
  return async (
    method: string,
    path: string,
    options: { token?: string; json?: unknown; yaml?: string; headers?: Record<string, string> } = {},
  ) => {
    const headers: Record<string, string> = { ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}), ...options.headers };
    let body: string | undefined;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    if (options.yaml !== undefined) {
      headers['Content-Type'] ??= 'application/yaml';
      body = options.yaml;
    }
    const response = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    let json: Reply['json'];
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json } as Reply;
  };
}

const examplePolicy = readFileSync(EXAMPLE_POLICY, 'utf8');
/** The example policy plus carol as a second admin, so someone can revoke alice. */
const withCarolAdmin = examplePolicy.replace(
  'match: [{ user: alice@example.com }]',
  'match: [{ user: alice@example.com }, { user: carol@example.com }]',
);

/**
 * The policy server suite, run against a store: `storeArgs` gives the arguments that pick it
 * (none: the data dir's files; `--store postgres://...`: PostgreSQL).
 */
export function describePolicyServer(label: string, storeArgs: () => string[]): void {
  describe(`policy server (${label})`, function () {
    this.timeout(60_000);
    let idp: LocalIdp;
    let server: RunningServer;
    let dir: string;
    let call: ReturnType<typeof api>;
    let alice: string;
    let bob: string;
    let carol: string;
    let jwks: () => Promise<JSONWebKeySet>;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-server-'));
      idp = await startLocalIdp();
      server = await startServer(idp, join(dir, 'data'), ['--bootstrap-policy', EXAMPLE_POLICY, ...storeArgs()]);
      call = api(server.ready.url);
      [alice, bob, carol] = await Promise.all([idp.tokenFor('alice'), idp.tokenFor('bob'), idp.tokenFor('carol')]);
      jwks = async () => (await call('GET', '/.well-known/jwks.json')).json as JSONWebKeySet;
    });

    after(async () => {
      await server?.stop();
      await idp?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('starts with the bootstrap policy as version 1 and keeps its data private', async () => {
      assert.equal(server.ready.version, 1);
      assert.equal(server.ready.issuer, server.ready.url);
      assert.equal((await call('GET', '/healthz')).status, 200);
      assert.equal(statSync(server.dataDir).mode & 0o777, 0o700);
      assert.equal(statSync(join(server.dataDir, 'signing-keys.json')).mode & 0o777, 0o600);
      if (storeArgs().length === 0) assert.equal(statSync(join(server.dataDir, 'policy-store.json')).mode & 0o777, 0o600);
      const keys = await jwks();
      assert.deepEqual(
        keys.keys.map((k) => k.kid),
        [server.ready.kid],
      );
      for (const key of keys.keys) {
        assert.equal(key.d, undefined, 'the JWKS must not carry private key material');
        assert.equal(key.alg, 'EdDSA');
      }
    });

    it('refuses callers without a valid token with 401 and a Bearer challenge', async () => {
      const missing = await call('GET', '/v1/effective-policy');
      assert.equal(missing.status, 401);
      assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer realm="gatehouse"/);
      assert.equal(missing.json.error, 'unauthorized');
      const forged = await call('GET', '/v1/policies', { token: `${alice.slice(0, -4)}AAAA` });
      assert.equal(forged.status, 401);
      assert.match(forged.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    });

    it('lets alice (admin) publish and refuses bob with 403 naming the admin groups', async () => {
      const byBob = await call('POST', '/v1/policies', { token: bob, yaml: withCarolAdmin });
      assert.equal(byBob.status, 403);
      assert.equal(byBob.json.error, 'forbidden');
      assert.match(byBob.json.message, /bob@example\.com is not in an admin group \(admins: policy-admins\)/);

      const byAlice = await call('POST', '/v1/policies', { token: alice, yaml: withCarolAdmin });
      assert.equal(byAlice.status, 201, byAlice.text);
      assert.equal(byAlice.json.version, 2);
      assert.equal(byAlice.json.sha256, createHash('sha256').update(withCarolAdmin).digest('hex'));

      const again = await call('POST', '/v1/policies', { token: alice, yaml: withCarolAdmin });
      assert.equal(again.status, 200, 'the same text again is not a new version');
      assert.deepEqual([again.json.version, again.json.unchanged], [2, true]);
    });

    it('answers an invalid policy with 422 and the line of each problem', async () => {
      const broken = withCarolAdmin.replace('effect: confirm', 'effect: maybe');
      const line = broken.split('\n').findIndex((l) => l.includes('effect: maybe')) + 1;
      const response = await call('POST', '/v1/policies', { token: alice, yaml: broken });
      assert.equal(response.status, 422);
      assert.equal(response.json.error, 'invalid_policy');
      assert.ok(
        response.json.problems.some((p: string) => p.startsWith(`policy.yaml:${line}:`) && p.includes('rules.1.effect')),
        JSON.stringify(response.json.problems),
      );

      const syntax = await call('POST', '/v1/policies', { token: alice, yaml: 'version: 1\norg: x\n  admins: [a]\n' });
      assert.equal(syntax.status, 422);
      // YAML syntax errors carry a position too (which line is common/yamlDocument.ts's business).
      assert.match(syntax.json.problems[0], /^policy\.yaml:\d+:\d+: /);

      const celBroken = withCarolAdmin.replace('size(args.message) <= 40', 'size(args.message) <=');
      const cel = await call('POST', '/v1/policies', { token: alice, yaml: celBroken });
      assert.equal(cel.status, 422);
      assert.ok(
        cel.json.problems.some((p: string) => /rules\.3\.when/.test(p)),
        JSON.stringify(cel.json.problems),
      );
    });

    it('validates the request itself: media type, size, parameters', async () => {
      const json = await call('POST', '/v1/policies', { token: alice, json: { policy: 'x' } });
      assert.equal(json.status, 415);
      assert.equal(json.json.error, 'unsupported_media_type');
      const huge = await call('POST', '/v1/policies', { token: alice, yaml: `# ${'x'.repeat(1024 * 1024 + 10)}\n` });
      assert.equal(huge.status, 413);
      assert.equal(huge.json.error, 'payload_too_large');
      assert.equal((await call('GET', '/v1/policies/abc', { token: alice })).status, 400);
      assert.equal((await call('GET', '/v1/policies/99', { token: alice })).status, 404);
      assert.equal((await call('GET', '/v1/policies/diff?from=1', { token: alice })).status, 400);
      const badRollback = await call('POST', '/v1/policies/rollback', { token: alice, json: { version: '1' } });
      assert.equal(badRollback.status, 400);
      assert.match(badRollback.json.message, /version/);
      assert.equal((await call('POST', '/v1/revocations', { token: alice, json: { sub: 'x', extra: true } })).status, 400);
      assert.equal((await call('GET', '/v1/nothing', { token: alice })).status, 404);
    });

    it('keeps a history, diffs versions and rolls back', async () => {
      const history = (await call('GET', '/v1/policies', { token: alice })).json as PolicyHistoryResponse;
      assert.equal(history.current, 2);
      assert.deepEqual(
        history.versions.map((v) => [v.version, v.publishedBy]),
        [
          [1, 'bootstrap'],
          [2, 'alice'],
        ],
      );
      assert.equal(history.versions[0]!.sha256, createHash('sha256').update(examplePolicy).digest('hex'));

      const text = await call('GET', '/v1/policies/2', { token: alice });
      assert.equal(text.status, 200);
      assert.match(text.headers.get('content-type') ?? '', /^application\/yaml/);
      assert.equal(text.text, withCarolAdmin);

      const diff = await call('GET', '/v1/policies/diff?from=1&to=2', { token: alice });
      assert.equal(diff.status, 200);
      assert.match(diff.text, /^--- version 1\n\+\+\+ version 2\n@@ -\d+,\d+ \+\d+,\d+ @@\n/);
      assert.match(diff.text, /^- {4}match: \[\{ user: alice@example\.com \}\]$/m);
      assert.match(diff.text, /^\+ {4}match: \[\{ user: alice@example\.com \}, \{ user: carol@example\.com \}\]$/m);

      const rollback = await call('POST', '/v1/policies/rollback', { token: alice, json: { version: 1 } });
      assert.equal(rollback.status, 201, rollback.text);
      assert.deepEqual([rollback.json.version, rollback.json.rolledBackFrom], [3, 1]);
      assert.equal((await call('GET', '/v1/policies/diff?from=1&to=3', { token: alice })).text, '');
      // Back to the version with carol as admin, for the revocation tests below.
      assert.equal((await call('POST', '/v1/policies', { token: alice, yaml: withCarolAdmin })).json.version, 4);
    });

    it('signs a different effective policy for alice and bob, verifiable against the JWKS', async () => {
      const keys = await jwks();
      const [forAlice, forBob, forCarol] = (await Promise.all(
        [alice, bob, carol].map((t) => call('GET', '/v1/effective-policy', { token: t })),
      )) as [Reply, Reply, Reply];
      for (const response of [forAlice, forBob, forCarol]) {
        assert.equal(response.status, 200, response.text);
        assert.match(response.headers.get('content-type') ?? '', /^application\/jwt/);
      }
      const a = await verifyPolicyBundle(forAlice.text, keys, { sub: 'alice', issuer: server.ready.issuer });
      const b = await verifyPolicyBundle(forBob.text, keys, { sub: 'bob', issuer: server.ready.issuer });
      assert.equal(a.ver, 4);
      assert.deepEqual(a.groups.sort(), ['engineers', 'policy-admins']);
      assert.deepEqual(b.groups, ['contractors']);
      assert.deepEqual(a.policy.servers.map((s) => s.id).sort(), ['everything', 'files', 'memory']);
      assert.deepEqual(b.policy.servers.map((s) => s.id).sort(), ['everything', 'files']);
      assert.equal(a.policy.admin, true);
      assert.equal(b.policy.admin, false);
      assert.ok(b.exp - b.iat === 3600);
      // carol is an admin but in no group a rule names: she still gets a bundle, with no servers.
      const c = await verifyPolicyBundle(forCarol.text, keys, { sub: 'carol', issuer: server.ready.issuer });
      assert.deepEqual(c.policy.servers, []);
      // A bundle is only good for the user it names.
      await assert.rejects(verifyPolicyBundle(forAlice.text, keys, { sub: 'bob', issuer: server.ready.issuer }), /claim check failed/);
    });

    it('rejects a tampered bundle', async () => {
      const jws = (await call('GET', '/v1/effective-policy', { token: bob })).text;
      const [header, payload, signature] = jws.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { groups: string[]; policy: { groups: string[] } };
      claims.groups = ['engineers'];
      claims.policy.groups = ['engineers'];
      const tampered = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
      await assert.rejects(
        verifyPolicyBundle(tampered, await jwks(), { sub: 'bob', issuer: server.ready.issuer }),
        /signature does not verify/,
      );
    });

    it('revalidates with ETag: 304 while nothing changed, a new bundle once something did', async () => {
      const first = await call('GET', '/v1/effective-policy', { token: alice });
      const etag = first.headers.get('etag')!;
      assert.match(etag, /^"v4\./);
      const again = await call('GET', '/v1/effective-policy', { token: alice, headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304);
      assert.equal(again.text, '');
      assert.equal(again.headers.get('etag'), etag);
      const bobs = await call('GET', '/v1/effective-policy', { token: bob });
      assert.notEqual(bobs.headers.get('etag'), etag, 'another user has another ETag');
      const stale = await call('GET', '/v1/effective-policy', { token: alice, headers: { 'If-None-Match': '"v3.stale"' } });
      assert.equal(stale.status, 200);
    });

    it('pushes a published version to an open event stream', async () => {
      const stream = await openEvents(server.ready.url, bob);
      try {
        assert.equal(stream.status, 200);
        await stream.next((e) => e.event === 'policy' && e.data.version === 4);
        const started = Date.now();
        const published = await call('POST', '/v1/policies', { token: alice, yaml: `${withCarolAdmin}# comment\n` });
        assert.equal(published.json.version, 5);
        const pushed = await stream.next((e) => e.event === 'policy' && e.data.version === 5);
        console.log(`      publish -> policy event on the stream: ${pushed.at - started} ms (including the publish request)`);
        const etagBefore = (await call('GET', '/v1/effective-policy', { token: bob })).headers.get('etag');
        assert.match(etagBefore ?? '', /^"v5\./);
      } finally {
        stream.close();
      }
    });

    it('revokes alice: her stream is told at once and every request is refused with 403', async () => {
      const aliceStream = await openEvents(server.ready.url, alice);
      const bobStream = await openEvents(server.ready.url, bob);
      try {
        await aliceStream.next((e) => e.event === 'policy');
        await bobStream.next((e) => e.event === 'policy');
        const self = await call('POST', '/v1/revocations', { token: alice, json: { sub: 'alice' } });
        assert.equal(self.status, 400, 'an admin cannot lock themselves out');

        const started = Date.now();
        const revoked = await call('POST', '/v1/revocations', { token: carol, json: { sub: 'alice', reason: 'laptop lost' } });
        assert.equal(revoked.status, 201, revoked.text);
        assert.equal(revoked.json.streamsTold, 1);
        const event = await aliceStream.next((e) => e.event === 'revoked');
        console.log(`      revocation -> revoked event on alice's stream: ${event.at - started} ms (including the revoke request)`);
        assert.deepEqual(event.data, { sub: 'alice' });

        const refused = await call('GET', '/v1/effective-policy', { token: alice });
        assert.equal(refused.status, 403);
        assert.equal(refused.json.error, 'revoked');
        assert.match(refused.json.message, /laptop lost/);
        assert.equal((await call('GET', '/v1/policies', { token: alice })).status, 403, 'a revoked admin is no admin');
        const lastCalls = await call('POST', '/v1/audit', { token: alice, json: { events: [auditEventFor('alice')] } });
        assert.equal(lastCalls.status, 200, "a revoked user's gateway still hands in the audit of what was done before");
        assert.equal(lastCalls.json.accepted, 1);
        assert.equal((await openEvents(server.ready.url, alice)).status, 403);
        await new Promise((r) => setTimeout(r, 100));
        assert.ok(!bobStream.events.some((e) => e.event === 'revoked'), 'only the revoked user is told');
        assert.ok(aliceStream.ended || (await waitFor(() => aliceStream.ended, 2_000)), 'the revoked stream ends');

        const list = await call('GET', '/v1/revocations', { token: carol });
        assert.deepEqual(
          list.json.revocations.map((r: { sub: string; revokedBy: string }) => [r.sub, r.revokedBy]),
          [['alice', 'carol']],
        );
        assert.equal((await call('GET', '/v1/revocations', { token: bob })).status, 403);

        const lifted = await call('DELETE', '/v1/revocations', { token: carol, json: { sub: 'alice' } });
        assert.equal(lifted.status, 204);
        assert.equal((await call('GET', '/v1/effective-policy', { token: alice })).status, 200);
      } finally {
        aliceStream.close();
        bobStream.close();
      }
    });

    it('revokes one session only when a sessionId is given', async () => {
      const revoked = await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', sessionId: 'some-other-session' } });
      assert.equal(revoked.status, 201);
      // bob's token carries no such session, so bob is still in.
      assert.equal((await call('GET', '/v1/effective-policy', { token: bob })).status, 200);
      assert.equal(
        (await call('DELETE', '/v1/revocations', { token: alice, json: { sub: 'bob', sessionId: 'some-other-session' } })).status,
        204,
      );
    });

    it("revokes a stored upstream credential: pushed on the user's open stream (kept open), listed in their bundle, the user stays in", async () => {
      const bobStream = await openEvents(server.ready.url, bob);
      try {
        await bobStream.next((e) => e.event === 'policy');
        assert.equal(
          (await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github', sessionId: 's' } })).status,
          400,
          'one target per revocation',
        );
        const revoked = await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github' } });
        assert.equal(revoked.status, 201, revoked.text);
        const event = await bobStream.next((e) => e.event === 'credential-revoked');
        assert.deepEqual(event.data, { sub: 'bob', serverId: 'github' });
        assert.equal(bobStream.ended, false, 'the stream stays open: the user keeps access');
        const bundle = await call('GET', '/v1/effective-policy', { token: bob });
        assert.equal(bundle.status, 200, 'bob is still in');
        const listed = (decodeJwt(bundle.text).policy as { credentialRevocations?: Array<{ serverId: string; revokedAt: string }> })
          .credentialRevocations;
        assert.deepEqual(
          listed?.map((r) => r.serverId),
          ['github'],
        );
        // Revoked again later (bob signed in since): the new time counts.
        await new Promise((r) => setTimeout(r, 5));
        await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github' } });
        const again = (
          decodeJwt((await call('GET', '/v1/effective-policy', { token: bob })).text).policy as {
            credentialRevocations?: Array<{ revokedAt: string }>;
          }
        ).credentialRevocations;
        assert.ok(again?.[0] && Date.parse(again[0].revokedAt) > Date.parse(listed![0]!.revokedAt));
        assert.equal(
          (await call('DELETE', '/v1/revocations', { token: alice, json: { sub: 'bob' } })).status,
          404,
          "lifting bob's access is not lifting the credential revocation",
        );
        assert.equal((await call('DELETE', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github' } })).status, 204);
      } finally {
        bobStream.close();
      }
    });

    it('rotates the signing key with overlap: old bundles keep verifying', async () => {
      const oldBundle = (await call('GET', '/v1/effective-policy', { token: alice })).text;
      const oldKid = decodeProtectedHeader(oldBundle).kid;
      assert.equal(oldKid, server.ready.kid);

      const rotated = await runCli(['policy-server', 'rotate-key', '--data-dir', server.dataDir, ...storeArgs()]);
      assert.equal(rotated.code, 0, rotated.stderr);
      const rotation = JSON.parse(rotated.stdout) as { kid: string; previousKid: string; previousServedUntil: string };
      assert.equal(rotation.previousKid, oldKid);
      // The overlap is the longest bundle lifetime (3600 s) plus a minute of clock skew.
      const overlap = Date.parse(rotation.previousServedUntil) - Date.now();
      assert.ok(overlap > 3_600_000 && overlap <= 3_660_000, `overlap ${overlap} ms`);
      assert.equal(statSync(join(server.dataDir, 'signing-keys.json')).mode & 0o777, 0o600);

      const keys = await jwks();
      assert.deepEqual(keys.keys.map((k) => k.kid).sort(), [oldKid, rotation.kid].sort());
      await verifyPolicyBundle(oldBundle, keys, { sub: 'alice', issuer: server.ready.issuer });
      const newBundle = (await call('GET', '/v1/effective-policy', { token: alice })).text;
      assert.equal(decodeProtectedHeader(newBundle).kid, rotation.kid, 'the running server signs with the new key');
      await verifyPolicyBundle(newBundle, keys, { sub: 'alice', issuer: server.ready.issuer });

      const viaApi = await call('POST', '/v1/keys/rotate', { token: alice });
      assert.equal(viaApi.status, 201, viaApi.text);
      assert.equal((await call('POST', '/v1/keys/rotate', { token: bob })).status, 403);
      const three = await jwks();
      assert.equal(three.keys.length, 3);
      await verifyPolicyBundle(oldBundle, three, { sub: 'alice', issuer: server.ready.issuer });
    });

    it('drops a rotated-out key from the JWKS once its bundles have expired', async () => {
      const keyDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
      try {
        const start = Date.now();
        const ring = await SigningKeyRing.openOrCreate(keyDir, start);
        const first = ring.current().kid;
        const { kid: second } = await ring.rotate(60, start);
        assert.deepEqual(
          ring.jwks(start + 59_000).keys.map((k) => k.kid),
          [first, second],
        );
        assert.deepEqual(
          ring.jwks(start + 61_000).keys.map((k) => k.kid),
          [second],
        );
        // The next rotation also deletes the expired key from the file.
        await ring.rotate(60, start + 120_000);
        const stored = JSON.parse(readFileSync(join(keyDir, 'signing-keys.json'), 'utf8')) as { keys: Array<{ kid: string }> };
        assert.ok(!stored.keys.some((k) => k.kid === first));
      } finally {
        rmSync(keyDir, { recursive: true, force: true });
      }
    });

    it('survives a restart with its versions, revocations and keys', async () => {
      await call('POST', '/v1/revocations', { token: alice, json: { sub: 'dave' } });
      const kidBefore = decodeProtectedHeader((await call('GET', '/v1/effective-policy', { token: alice })).text).kid;
      await server.stop();
      server = await startServer(idp, server.dataDir, ['--bootstrap-policy', EXAMPLE_POLICY, ...storeArgs()]);
      call = api(server.ready.url);
      assert.equal(server.ready.version, 5, 'the bootstrap policy is ignored once a policy exists');
      assert.equal(server.ready.kid, kidBefore);
      assert.deepEqual(
        (await call('GET', '/v1/revocations', { token: alice })).json.revocations.map((r: { sub: string }) => r.sub),
        ['dave'],
      );
    });

    describe('gatehouse policy CLI', () => {
      let aliceTokenFile: string;
      let bobTokenFile: string;

      before(() => {
        aliceTokenFile = join(dir, 'alice.token');
        bobTokenFile = join(dir, 'bob.token');
        writeFileSync(aliceTokenFile, `${alice}\n`, { mode: 0o600 });
        writeFileSync(bobTokenFile, `${bob}\n`, { mode: 0o600 });
      });

      it('validate: exit 1 with file:line:col for a broken file, 0 for the example', async () => {
        const broken = join(dir, 'broken.yaml');
        writeFileSync(broken, examplePolicy.replace('effect: confirm', 'effect: maybe'));
        const line =
          readFileSync(broken, 'utf8')
            .split('\n')
            .findIndex((l) => l.includes('effect: maybe')) + 1;
        const bad = await runCli(['policy', 'validate', broken]);
        assert.equal(bad.code, 1);
        assert.match(bad.stdout, new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+: rules\\.1\\.effect: `, 'm'));
        const good = await runCli(['policy', 'validate', EXAMPLE_POLICY]);
        assert.equal(good.code, 0, good.stderr);
        assert.match(good.stdout, /^valid/);
        const missing = await runCli(['policy', 'validate', join(dir, 'nope.yaml')]);
        assert.equal(missing.code, 1);
        assert.match(missing.stdout, /cannot read file: ENOENT/);
      });

      it('publish, history, diff and rollback against the server', async () => {
        const server_ = ['--server', server.ready.url, '--token-file', aliceTokenFile];
        const file = join(dir, 'next.yaml');
        writeFileSync(file, `${withCarolAdmin}# from the CLI\n`);
        const published = await runCli(['policy', 'publish', file, ...server_]);
        assert.equal(published.code, 0, published.stderr);
        assert.match(published.stdout, /^published version 6 /);

        const history = await runCli(['policy', 'history', ...server_]);
        assert.equal(history.code, 0, history.stderr);
        assert.match(history.stdout, /^\s+6\s+\S+\s+alice\s+[0-9a-f]{12}\s+current$/m);
        assert.match(history.stdout, /^\s+3\s+.*rollback to 1$/m);

        const diff = await runCli(['policy', 'diff', '5', '6', ...server_]);
        assert.equal(diff.code, 0, diff.stderr);
        assert.match(diff.stdout, /^-# comment\n\+# from the CLI$/m);

        const rollback = await runCli(['policy', 'rollback', '5', ...server_]);
        assert.equal(rollback.code, 0, rollback.stderr);
        assert.match(rollback.stdout, /version 5 republished as version 7/);
      });

      it('fails clearly: not an admin, invalid file, unreachable server, bad usage', async () => {
        const asBob = await runCli(['policy', 'history', '--server', server.ready.url, '--token-file', bobTokenFile]);
        assert.equal(asBob.code, 1);
        assert.match(asBob.stderr, /not in an admin group .* \(HTTP 403 forbidden\)/);

        const broken = join(dir, 'broken.yaml');
        const invalid = await runCli(['policy', 'publish', broken, '--server', server.ready.url, '--token-file', aliceTokenFile]);
        assert.equal(invalid.code, 1);
        assert.match(invalid.stderr, /rules\.1\.effect/);

        const closedPort = await freePort();
        const unreachable = await runCli([
          'policy',
          'history',
          '--server',
          `http://127.0.0.1:${closedPort}`,
          '--token-file',
          aliceTokenFile,
        ]);
        assert.equal(unreachable.code, 1);
        assert.match(
          unreachable.stderr,
          new RegExp(`cannot reach the policy server at http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED`),
        );

        const remoteHttp = await runCli(['policy', 'history', '--server', 'http://policy.example.com', '--token-file', aliceTokenFile]);
        assert.equal(remoteHttp.code, 1);
        assert.match(remoteHttp.stderr, /must use https/);

        const noToken = await runCli(['policy', 'history', '--server', server.ready.url]);
        assert.equal(noToken.code, 2);
        assert.match(noToken.stderr, /--token-file <path> is required/);
        assert.equal((await runCli(['policy', 'diff', '1', '--server', server.ready.url, '--token-file', aliceTokenFile])).code, 2);
      });
    });
  });
}

function auditEventFor(user: string): AuditEvent {
  return {
    id: createAuditEventId(),
    time: new Date().toISOString(),
    user,
    client: { name: 'test', version: '1' },
    server: 'memory',
    method: 'tools/call',
    tool: 'read_graph',
    decision: 'allow',
    status: 'ok',
    redactions: {},
    flags: [],
    latencyMs: 1,
  };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return condition();
}

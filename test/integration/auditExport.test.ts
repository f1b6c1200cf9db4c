/**
 * Audit export for security teams (#7 item 5): the real policy server started with
 * `--audit-syslog` and `--audit-otlp`, a gateway's batch posted to `/v1/audit` as a gateway
 * posts it, and receivers the test runs on loopback: a UDP syslog socket, a TCP one
 * (octet-counted frames, RFC 6587) and an OTLP/HTTP collector endpoint. Checked: the RFC 5424
 * header and structured data (escaping included), the OpenTelemetry records with the MCP
 * semantic-convention attributes, a resent batch not exported twice, nothing beyond the
 * audit event (no arguments) leaving, and export off unless asked for.
 */
import { auditEventOf } from '../support/auditEvents';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { formatSyslog, SyslogSink } from '../../policy-server/audit/export/syslogSink';
import { parsePolicyServerArgs } from '../../policy-server/cli/policyServerArgs';
import { waitUntil } from '../support/gatewayHarness';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { removeDir, startPolicyServer, type RunningPolicyServer } from '../support/policyHarness';

const POLICY = `version: 1
org: test
admins: [admins]
servers:
  - { id: github, title: GitHub, transport: { type: streamable-http, url: "https://mcp.example.com/mcp" } }
groups:
  - { id: admins, match: [{ claim: sub, equals: carol }] }
rules:
  - { id: all, effect: allow, principals: ["*"], servers: [github], tools: ["*"] }
`;

const event = (overrides: Partial<AuditEvent>) =>
  auditEventOf({
    client: { name: 'Visual Studio Code', version: '1.117.0' },
    server: 'github',
    tool: 'list_issues',
    latencyMs: 3.5,
    ...overrides,
  });

interface OtlpRecord {
  severityNumber: number;
  body: { stringValue: string };
  eventName?: string;
  attributes: Array<{
    key: string;
    value: { stringValue?: string; intValue?: string | number; doubleValue?: number; arrayValue?: unknown };
  }>;
}

describe('audit export: RFC 5424 syslog and OpenTelemetry logs', function () {
  this.timeout(60_000);
  let idp: LocalIdp;
  let server: RunningPolicyServer;
  let collector: Server;
  const udpLines: string[] = [];
  const otlpRecords: OtlpRecord[] = [];
  const udp = createSocket('udp4');
  let alice: string;

  before(async () => {
    udp.on('message', (message) => udpLines.push(message.toString('utf8')));
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    collector = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/logs' && req.method === 'POST') {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            resourceLogs: Array<{ scopeLogs: Array<{ logRecords: OtlpRecord[] }> }>;
          };
          for (const resource of body.resourceLogs) for (const scope of resource.scopeLogs) otlpRecords.push(...scope.logRecords);
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    idp = await startLocalIdp();
    alice = await idp.tokenFor('alice');
    server = await startPolicyServer(idp, {
      policyYaml: POLICY,
      extraArgs: [
        '--audit-syslog',
        `udp://127.0.0.1:${(udp.address() as AddressInfo).port}`,
        '--audit-otlp',
        `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/logs`,
      ],
    });
  });

  after(async () => {
    await server?.stop();
    await idp?.stop();
    udp.close();
    collector?.close();
    if (server) removeDir(server.dir);
  });

  it('sends what the central store accepts to syslog and OTLP, once, with the MCP attribute names', async () => {
    const batch = [
      event({ tool: 'delete_repo', decision: 'confirm-approved', reviewer: 'bob', rule: 'deletes-reviewed', argsDigest: 'a'.repeat(64) }),
      event({ tool: 'weird"]\\name', decision: 'deny', status: 'denied', rule: 'no-weird', flags: ['injection-marker'] }),
      event({ tool: 'read_file', redactions: { 'aws-access-key': 1 } }),
    ];
    const post = () =>
      fetch(`${server.url}/v1/audit`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ events: batch }),
      });
    assert.equal((await post()).status, 200);
    await waitUntil(() => udpLines.length >= 3 && otlpRecords.length >= 3, 10_000);

    // RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG; facility 13 (log audit).
    const [approved, denied, redacted] = batch.map((e) => udpLines.find((line) => line.includes(`id="${e.id}"`)));
    assert.match(
      approved!,
      new RegExp(
        `^<109>1 ${batch[0]!.time.replace(/[.]/g, '\\.')} \\S+ gatehouse \\d+ audit \\[gatehouse@32473 id="${batch[0]!.id}" user="alice" client="Visual Studio Code/1\\.117\\.0" server="github" method="tools/call" tool="delete_repo" decision="confirm-approved" rule="deletes-reviewed" reviewer="bob" status="ok" latencyMs="3\\.5" argsDigest="a{64}"\\] \uFEFFalice tools/call delete_repo on github: confirm-approved by bob`,
      ),
    );
    assert.ok(denied!.startsWith('<108>1 '), 'a refusal is a warning');
    assert.ok(denied!.includes('tool="weird\\"\\]\\\\name"'), `", ] and \\ are escaped in structured data: ${denied}`);
    assert.ok(denied!.includes('flags="injection-marker"'));
    assert.ok(redacted!.startsWith('<110>1 ') && redacted!.includes('redactions="aws-access-key:1"'));

    const record = otlpRecords.find((r) =>
      r.attributes.some((a) => a.key === 'gatehouse.audit.id' && a.value.stringValue === batch[0]!.id),
    )!;
    const attribute = (key: string) => record.attributes.find((a) => a.key === key)?.value;
    assert.equal(record.eventName, 'gatehouse.audit');
    assert.equal(record.body.stringValue, 'alice tools/call delete_repo on github: confirm-approved by bob (rule deletes-reviewed), ok');
    assert.equal(attribute('mcp.method.name')?.stringValue, 'tools/call');
    assert.equal(attribute('gen_ai.tool.name')?.stringValue, 'delete_repo');
    assert.equal(attribute('user.id')?.stringValue, 'alice');
    assert.equal(attribute('gatehouse.reviewer')?.stringValue, 'bob');
    const deniedRecord = otlpRecords.find((r) =>
      r.attributes.some((a) => a.key === 'gatehouse.audit.id' && a.value.stringValue === batch[1]!.id),
    )!;
    assert.equal(deniedRecord.severityNumber, 13, 'WARN');
    assert.equal(deniedRecord.attributes.find((a) => a.key === 'error.type')?.value.stringValue, 'denied');

    // A gateway resending the batch (its ack was lost) gets duplicates, and nothing is exported twice.
    assert.deepEqual(await (await post()).json(), { accepted: 0, duplicates: 3 });
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(udpLines.length, 3);
    assert.equal(otlpRecords.length, 3);
    assert.ok(
      !JSON.stringify(otlpRecords).includes('"arguments"') && !udpLines.join('').includes('arguments'),
      'only the audit event leaves: never arguments or results',
    );
  });

  it('frames syslog over TCP with octet counting (RFC 6587)', async () => {
    const received: Buffer[] = [];
    const tcp = createTcpServer((socket) => socket.on('data', (c: Buffer) => received.push(c)));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const sink = new SyslogSink(new URL(`tcp://127.0.0.1:${(tcp.address() as AddressInfo).port}`));
    try {
      const events = [event({ tool: 'a' }), event({ tool: 'b' })];
      await sink.send(events);
      await waitUntil(
        () => Buffer.concat(received).length >= events.map((e) => Buffer.byteLength(formatSyslog(e))).reduce((a, b) => a + b),
        5_000,
      );
      let stream = Buffer.concat(received);
      const frames: string[] = [];
      while (stream.length > 0) {
        const space = stream.indexOf(0x20);
        const length = Number(stream.subarray(0, space).toString());
        frames.push(stream.subarray(space + 1, space + 1 + length).toString('utf8'));
        stream = stream.subarray(space + 1 + length);
      }
      assert.equal(frames.length, 2);
      assert.ok(frames.every((frame, i) => frame.startsWith('<110>1 ') && frame.includes(`id="${events[i]!.id}"`)));
    } finally {
      await sink.close();
      tcp.close();
    }
  });

  it('is off unless asked for, and refuses clear-text or malformed targets', () => {
    const base = ['--oidc-issuer', 'https://idp.example.com', '--oidc-audience', 'aud'];
    const args = parsePolicyServerArgs(base);
    assert.ok(args.command === 'serve' && args.auditSyslog === undefined && args.auditOtlp === undefined);
    assert.throws(() => parsePolicyServerArgs([...base, '--audit-otlp', 'http://collector.example.com:4318/v1/logs']), /https/);
    assert.throws(
      () => parsePolicyServerArgs([...base, '--audit-otlp', 'https://user:pw@collector.example.com/v1/logs']),
      /without credentials/,
    );
    assert.throws(() => parsePolicyServerArgs([...base, '--audit-syslog', 'syslog.example.com:514']), /udp:\/\/<host>:<port>/);
    assert.throws(() => parsePolicyServerArgs([...base, '--audit-syslog', 'udp://syslog.example.com']), /udp:\/\/<host>:<port>/);
  });
});

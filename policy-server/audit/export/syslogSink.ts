/**
 * RFC 5424 syslog for audit events: facility 13 (log audit), severity from the decision
 * (warning for refusals, notice for confirmed or failed calls, informational otherwise),
 * the event's fields as structured data under `gatehouse@32473` (32473 is the enterprise
 * number RFC 5612 sets aside for examples; an org with its own may change it), and a
 * one-line summary as the message. Sent over UDP (RFC 5426, one datagram per event) or TCP
 * with octet-counting framing (RFC 6587), reconnecting when the connection drops.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import type { AuditEvent } from '../../../common/audit/auditEvent';
import { auditSeverity, auditSummary, type AuditSink } from './auditExport';

const FACILITY_LOG_AUDIT = 13;
const SEVERITY = { warning: 4, notice: 5, info: 6 } as const;
export const SD_ID = 'gatehouse@32473';

/** RFC 5424 PARAM-VALUE: `"`, `\` and `]` escaped with a backslash. */
function paramValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** A header field: printable US-ASCII without spaces, 1 to `max` characters, else NILVALUE. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean || '-';
}

export function formatSyslog(event: AuditEvent, host = hostname()): string {
  const pri = FACILITY_LOG_AUDIT * 8 + SEVERITY[auditSeverity(event)];
  const params: Array<[string, string | undefined]> = [
    ['id', event.id],
    ['user', event.user],
    ['client', `${event.client.name}/${event.client.version}`],
    ['server', event.server],
    ['method', event.method],
    ['tool', event.tool],
    ['decision', event.decision],
    ['rule', event.rule],
    ['reviewer', event.reviewer],
    ['status', event.status],
    ['latencyMs', String(event.latencyMs)],
    ['argsDigest', event.argsDigest],
    ['flags', event.flags.length ? event.flags.join(',') : undefined],
    [
      'redactions',
      Object.keys(event.redactions).length
        ? Object.entries(event.redactions)
            .map(([kind, n]) => `${kind}:${n}`)
            .join(',')
        : undefined,
    ],
  ];
  const sd = `[${SD_ID}${params
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${paramValue(v!)}"`)
    .join('')}]`;
  // HEADER: PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID; then SD and a UTF-8 MSG (with its BOM).
  return `<${pri}>1 ${event.time} ${headerField(host, 255)} gatehouse ${process.pid} audit ${sd} \uFEFF${auditSummary(event)}`;
}

export class SyslogSink implements AuditSink {
  readonly name: string;
  private udp: UdpSocket | undefined;
  private tcp: Socket | undefined;

  constructor(private readonly target: URL) {
    if (target.protocol !== 'udp:' && target.protocol !== 'tcp:')
      throw new Error(`syslog target must be udp://host:port or tcp://host:port, not ${target.protocol}`);
    if (!target.port) throw new Error('syslog target needs a port (514 is the usual one)');
    this.name = `syslog ${target.protocol}//${target.host}`;
  }

  async send(events: AuditEvent[]): Promise<void> {
    const lines = events.map((event) => Buffer.from(formatSyslog(event), 'utf8'));
    if (this.target.protocol === 'udp:') {
      this.udp ??= createSocket(this.target.hostname.includes(':') ? 'udp6' : 'udp4');
      for (const line of lines) {
        await new Promise<void>((resolve, reject) =>
          this.udp!.send(line, Number(this.target.port), this.target.hostname.replace(/^\[|\]$/g, ''), (error) =>
            error ? reject(error) : resolve(),
          ),
        );
      }
      return;
    }
    const socket = await this.connection();
    const framed = Buffer.concat(lines.flatMap((line) => [Buffer.from(`${line.length} `), line]));
    await new Promise<void>((resolve, reject) => socket.write(framed, (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<void> {
    this.udp?.close();
    this.udp = undefined;
    this.tcp?.end();
    this.tcp = undefined;
  }

  private async connection(): Promise<Socket> {
    if (this.tcp && !this.tcp.destroyed) return this.tcp;
    const socket = connect({ host: this.target.hostname.replace(/^\[|\]$/g, ''), port: Number(this.target.port) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => socket.destroy()); // the next send reconnects
    this.tcp = socket;
    return socket;
  }
}

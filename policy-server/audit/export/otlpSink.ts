/**
 * OpenTelemetry logs over OTLP/HTTP for audit events, with the OpenTelemetry SDK: one log
 * record per event, named `gatehouse.audit`, timestamped with the call's arrival, severity
 * from the decision, the summary as the body, and attributes in the MCP semantic
 * conventions where they exist (`mcp.method.name`, `gen_ai.tool.name`, `mcp.resource.uri`,
 * `gen_ai.prompt.name`, `user.id`, `error.type`) and under `gatehouse.*` otherwise.
 */
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import type { AuditEvent } from '../../../common/audit/auditEvent';
import { GATEHOUSE_VERSION } from '../../../common/version';
import { auditSeverity, auditSummary, type AuditSink } from './auditExport';

const SEVERITY = {
  warning: { number: SeverityNumber.WARN, text: 'WARN' },
  notice: { number: SeverityNumber.INFO2, text: 'INFO2' },
  info: { number: SeverityNumber.INFO, text: 'INFO' },
} as const;

/** The attributes of one event's log record. */
export function otlpAttributes(event: AuditEvent): Record<string, string | number | string[]> {
  const subject = event.tool;
  return {
    'gatehouse.audit.id': event.id,
    'user.id': event.user,
    'mcp.method.name': event.method,
    ...(subject && event.method === 'tools/call' ? { 'gen_ai.tool.name': subject } : {}),
    ...(subject?.startsWith('resource:')
      ? { 'mcp.resource.uri': subject.slice('resource:'.length) }
      : event.method.startsWith('resources/') && subject
        ? { 'mcp.resource.uri': subject }
        : {}),
    ...(subject && event.method === 'prompts/get' ? { 'gen_ai.prompt.name': subject.replace(/^prompt:/, '') } : {}),
    'gatehouse.server': event.server,
    'gatehouse.client': `${event.client.name}/${event.client.version}`,
    'gatehouse.decision': event.decision,
    ...(event.rule ? { 'gatehouse.rule': event.rule } : {}),
    ...(event.reviewer ? { 'gatehouse.reviewer': event.reviewer } : {}),
    'gatehouse.status': event.status,
    ...(event.status !== 'ok' ? { 'error.type': event.status } : {}),
    'gatehouse.latency_ms': event.latencyMs,
    ...(event.argsDigest ? { 'gatehouse.args_digest': event.argsDigest } : {}),
    ...(event.flags.length ? { 'gatehouse.flags': event.flags } : {}),
    ...Object.fromEntries(Object.entries(event.redactions).map(([kind, count]) => [`gatehouse.redactions.${kind}`, count])),
  };
}

export class OtlpSink implements AuditSink {
  readonly name: string;
  private readonly provider: LoggerProvider;
  private readonly processor: BatchLogRecordProcessor;
  private readonly logger;

  constructor(endpoint: URL) {
    if (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:')
      throw new Error(`the OTLP endpoint must be an http(s) URL, not ${endpoint.protocol}`);
    this.name = `otlp ${endpoint.origin}${endpoint.pathname}`;
    this.processor = new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: endpoint.href }), scheduledDelayMillis: 200 });
    this.provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'gatehouse-policy-server', 'service.version': GATEHOUSE_VERSION }),
      processors: [this.processor],
    });
    this.logger = this.provider.getLogger('gatehouse.audit');
  }

  async send(events: AuditEvent[]): Promise<void> {
    for (const event of events) {
      const severity = SEVERITY[auditSeverity(event)];
      this.logger.emit({
        eventName: 'gatehouse.audit',
        timestamp: new Date(event.time),
        severityNumber: severity.number,
        severityText: severity.text,
        body: auditSummary(event),
        attributes: otlpAttributes(event),
      });
    }
    await this.processor.forceFlush();
  }

  async close(): Promise<void> {
    await this.provider.shutdown();
  }
}

/**
 * Gatehouse's version, reported by the gateway (ready line, clientInfo to upstreams) and by
 * the policy server (OpenTelemetry `service.version`). Read from package.json so a release
 * bumps one place; esbuild inlines only this field into the bundle.
 */
import { version } from '../package.json';

export const GATEHOUSE_VERSION: string = version;

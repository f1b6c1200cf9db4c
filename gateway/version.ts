/** Reported to upstreams as clientInfo.version and in the ready line. Bumped with package.json. */
export const GATEWAY_VERSION = '0.1.0';

/**
 * Publishing the org policy: validate (line-precise problems), store as the next version,
 * and push the new version to every open event stream. History, a version's text, a diff
 * between versions and rollback (republishing an old text as a new version) are read from
 * the store; the parsed current document is cached by version.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parsePolicyDocument, type PolicyDocument } from '../../common/policy/policyDocument';
import type { Logger } from '../../common/log/logger';
import type { PolicyStore, PolicyVersionRecord, PolicyVersionSummary } from '../store/policyStore';
import { unifiedDiff } from './lineDiff';

/** Name published texts carry in problem reports (`policy.yaml:12:5: ...`). */
export const PUBLISHED_POLICY_LABEL = 'policy.yaml';
// The schema's largest bundle lifetime: the overlap for a key rotation when nothing else is known.
const MAX_BUNDLE_TTL_SECONDS = 86_400;

export interface CurrentPolicy {
  version: number;
  document: PolicyDocument;
}

export class PolicyVersionNotFoundError extends Error {
  constructor(readonly version: number) {
    super(`Policy version ${version} does not exist.`);
  }
}

export class PolicyService {
  private cached: CurrentPolicy | undefined;

  constructor(
    private readonly store: PolicyStore,
    private readonly log: Logger,
    /** Told about every new version (the event hub pushes it to gateways). */
    private readonly onPublished: (version: number) => void = () => undefined,
  ) {}

  /** The current version parsed, or undefined before anything was published. */
  async current(): Promise<CurrentPolicy | undefined> {
    const latest = await this.store.latestVersion();
    if (!latest) return undefined;
    if (this.cached?.version !== latest.version) {
      this.cached = {
        version: latest.version,
        document: parsePolicyDocument(latest.text, `${PUBLISHED_POLICY_LABEL} (version ${latest.version})`),
      };
    }
    return this.cached;
  }

  /**
   * Validates and publishes `text`; throws PolicyError listing every problem. Text equal to
   * the current version is not stored again (CI jobs publish on every push).
   */
  async publish(text: string, publishedBy: string, rolledBackFrom?: number): Promise<{ record: PolicyVersionRecord; unchanged: boolean }> {
    parsePolicyDocument(text, PUBLISHED_POLICY_LABEL);
    const sha256 = sha256Hex(text);
    const latest = await this.store.latestVersion();
    if (latest && latest.sha256 === sha256 && rolledBackFrom === undefined) return { record: latest, unchanged: true };
    const record = await this.store.appendVersion({
      text,
      sha256,
      publishedAt: new Date().toISOString(),
      publishedBy,
      ...(rolledBackFrom !== undefined ? { rolledBackFrom } : {}),
    });
    this.log.info('policy published', {
      version: record.version,
      by: publishedBy,
      sha256,
      ...(rolledBackFrom !== undefined ? { rolledBackFrom } : {}),
    });
    this.onPublished(record.version);
    return { record, unchanged: false };
  }

  /** Publishes `file` as version 1 when nothing was ever published; an org needs a first policy to have admins. */
  async bootstrap(file: string): Promise<PolicyVersionRecord | undefined> {
    if (await this.store.latestVersion()) return undefined;
    const path = resolve(file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the bootstrap policy ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
        cause: error,
      });
    }
    parsePolicyDocument(text, path);
    return (await this.publish(text, 'bootstrap')).record;
  }

  history(): Promise<PolicyVersionSummary[]> {
    return this.store.listVersions();
  }

  async version(version: number): Promise<PolicyVersionRecord> {
    const record = await this.store.getVersion(version);
    if (!record) throw new PolicyVersionNotFoundError(version);
    return record;
  }

  async diff(from: number, to: number): Promise<string> {
    const [before, after] = [await this.version(from), await this.version(to)];
    return unifiedDiff(before.text, after.text, { from: `version ${from}`, to: `version ${to}` });
  }

  async rollback(version: number, by: string): Promise<PolicyVersionRecord> {
    const old = await this.version(version);
    return (await this.publish(old.text, by, version)).record;
  }

  /**
   * The longest bundle lifetime any stored version granted: how long a rotated-out key
   * must stay in the JWKS so every bundle it signed still verifies until it expires.
   */
  async maxBundleTtlSeconds(): Promise<number> {
    const versions = await this.store.listVersions();
    if (versions.length === 0) return MAX_BUNDLE_TTL_SECONDS;
    let longest = 0;
    for (const summary of versions) {
      const record = await this.store.getVersion(summary.version);
      if (!record) continue;
      try {
        longest = Math.max(longest, parsePolicyDocument(record.text, PUBLISHED_POLICY_LABEL).guardrails.bundleTtlSeconds);
      } catch {
        return MAX_BUNDLE_TTL_SECONDS; // a version this build cannot read: assume the worst
      }
    }
    return longest;
  }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

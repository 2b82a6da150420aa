// CNI spec versions Warren speaks, and how to compare them.
import { CniCode, CniError } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const LATEST_VERSION = '1.1.0';

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupported(version: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

export function requireSupported(version: unknown): string {
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new CniError(CniCode.IncompatibleVersion, `cniVersion ${JSON.stringify(version)} is not a version`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (!isSupported(version)) {
    throw new CniError(CniCode.IncompatibleVersion, `cniVersion ${version} is not supported`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  return version;
}

/** The highest version both sides support that is not above `ceiling`. */
export function bestCommonVersion(ceiling: string, theirs: readonly string[]): string | undefined {
  return theirs
    .filter((v) => isSupported(v) && compareVersions(v, ceiling) <= 0)
    .sort(compareVersions)
    .at(-1);
}

/** Verbs the spec introduced after 0.3.x only exist for configs at or above that version. */
export const VERB_MIN_VERSION: Record<string, string> = {
  ADD: '0.3.0',
  DEL: '0.3.0',
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
};

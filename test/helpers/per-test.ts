// A resource made fresh for each test of the calling file and destroyed after it, even when
// the test failed. After-hooks run in reverse order of registration: register what is
// torn down last first.
import { afterEach, beforeEach } from 'vitest';

export function perTest<T>(what: string, create: () => Promise<T>, destroy: (t: T) => Promise<void>): () => T {
  let value: T | undefined;
  beforeEach(async () => {
    value = await create();
  });
  afterEach(async () => {
    const v = value;
    value = undefined;
    if (v !== undefined) await destroy(v);
  });
  return () => {
    if (value === undefined) throw new Error(`${what} exists only inside a test`);
    return value;
  };
}

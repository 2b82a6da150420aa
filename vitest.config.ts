import { defineConfig } from 'vitest/config';

// Integration tests build real namespaces, OVS instances and etcd servers on a 2-core
// machine: files run one at a time, each test tears down in afterEach.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default'],
  },
});

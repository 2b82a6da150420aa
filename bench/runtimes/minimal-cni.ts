// The least a CNI plugin does for VERSION: read the config on stdin, answer JSON on stdout.
// Its start time under a runtime is that runtime's floor for a plugin.
import { readFileSync, writeSync } from 'node:fs';
import { start } from './start.js';

start(() => {
  const config = JSON.parse(readFileSync(0, 'utf8') || '{}') as { cniVersion?: string };
  writeSync(1, JSON.stringify({ cniVersion: config.cniVersion ?? '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] }));
});

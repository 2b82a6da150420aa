// warren-cni from a V8 startup snapshot: the plugin's modules are evaluated when the
// executable is built, and a start only reads the config and dispatches. Unlike cni/main.ts
// it reads stdin in one call: the bench hands it a blocking pipe.
import { readFileSync, writeSync } from 'node:fs';
import { dispatch } from '../../cni/dispatch.js';
import { start } from './start.js';

start(() => {
  void dispatch({ env: process.env, stdin: readFileSync(0, 'utf8'), stdout: (text) => void writeSync(1, text) }).then((code) => {
    process.exitCode = code;
  });
});

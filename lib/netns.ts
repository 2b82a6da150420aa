// All work inside a network namespace goes through here. Node cannot setns(2) a
// thread, so commands are started through nsenter, which enters the namespace and
// then execs the tool: one process, as cheap as running the tool directly.
import { statSync } from 'node:fs';
import type { Runner } from './runner.js';

export function inNetns(runner: Runner, netnsPath: string): Runner {
  return (file, args, options) => runner('nsenter', [`--net=${netnsPath}`, '--', file, ...args], options);
}

export function netnsExists(netnsPath: string): boolean {
  try {
    statSync(netnsPath);
    return true;
  } catch {
    return false;
  }
}

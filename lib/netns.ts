// All work inside a network namespace goes through here. Node cannot setns(2) a
// thread, so commands are started through nsenter, which enters the namespace and
// then execs the tool: one process, as cheap as running the tool directly.
import { statfsSync, statSync } from 'node:fs';
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

// statfs(2)'s f_type of nsfs, the file system of /proc/PID/ns/* and of their bind mounts
// under /run/netns (linux/magic.h).
const NSFS_MAGIC = 0x6e736673;

/** Whether the path is a namespace (nsfs) file; a stale mount point or any other file is not. */
export function isNamespaceFile(path: string): boolean {
  try {
    return statfsSync(path).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

// A private Open vSwitch (ovsdb-server + ovs-vswitchd) inside one namespace, as on an
// emulated node: its own run directory, database and sockets.
import { isRunning } from '../../lib/pid.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import { run, waitFor } from './sh.js';

export interface OvsInstance {
  dir: string;
  db: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

const OVS_NICE = -10;

export async function startOvs(ns: Netns): Promise<OvsInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-ovs-'));
  const env = { OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir };
  const db = `unix:${dir}/db.sock`;
  await run('ovsdb-tool', ['create', `${dir}/conf.db`, '/usr/share/openvswitch/vswitch.ovsschema']);
  // At nice -10, as Debian's openvswitch-switch starts both daemons (ovs-ctl's default
  // priority): on a node whose cores are busy, a pod's port would otherwise wait for them.
  await ns.exec('nice', ['-n', String(OVS_NICE), 'ovsdb-server', `${dir}/conf.db`, `--remote=punix:${dir}/db.sock`, `--pidfile=${dir}/ovsdb-server.pid`,
    '--detach', `--log-file=${dir}/ovsdb-server.log`, `--unixctl=${dir}/ovsdb-server.ctl`], { env });
  await run('ovs-vsctl', [`--db=${db}`, '--no-wait', 'init'], { env });
  await ns.exec('nice', ['-n', String(OVS_NICE), 'ovs-vswitchd', db, `--pidfile=${dir}/ovs-vswitchd.pid`, '--detach', `--log-file=${dir}/ovs-vswitchd.log`,
    `--unixctl=${dir}/ovs-vswitchd.ctl`], { env });
  await waitFor('ovs-vswitchd', async () => (await run('ovs-vsctl', [`--db=${db}`, '--timeout=2', 'show'], { env, allowFailure: true })) !== '');
  return {
    dir,
    db,
    env,
    async stop() {
      for (const d of ['ovs-vswitchd', 'ovsdb-server']) {
        let pid: number;
        try {
          pid = Number(readFileSync(`${dir}/${d}.pid`, 'utf8').trim());
          process.kill(pid, 'SIGTERM');
        } catch {
          continue; // already gone
        }
        await waitFor(`${d} to exit`, () => !isRunning(pid));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

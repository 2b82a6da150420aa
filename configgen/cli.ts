// The command line: options from the SETTINGS table, four commands (allocate and write
// by default, `release`, `list`, `admin ...`), and one exit status per failure class.
// Everything the process touches comes in through CliDeps, so the whole CLI runs
// in-process.
import { Command, CommanderError, Option } from 'commander';
import { authOffWarning, etcdAuthEnabled } from '../lib/etcd/auth-status.js';
import { EtcdStore } from '../lib/etcd/store.js';
import type { Clock } from '../lib/etcd/retry.js';
import { errorMessage } from '../lib/errors.js';
import type { Runner } from '../lib/runner.js';
import { readConfigFile, type FileSettings, type SettingName } from './config-file.js';
import { ConfigError, EXIT_STATUSES, exitStatusOf } from './errors.js';
import { nodeNameProblem } from '../lib/names.js';
import { addAdminCommands } from './admin/commands.js';
import { decideMtu, generate } from './generate.js';
import { formatTable, listAllocations } from './list.js';
import { release } from './release.js';
import { resolveAllocate, resolveStore, SETTINGS, type Sources, type StoreConfig } from './settings.js';

export const PROGRAM = 'warren-configgen';

export interface CliDeps {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  hostname: string;
  runner: Runner;
  clock?: Clock;
}

type Opts = Record<string, unknown>;

function helpFooter(): string {
  const exits = EXIT_STATUSES.map(([code, what]) => `  ${code}  ${what}`).join('\n');
  return `
Precedence: flags, then environment variables, then the --config file (JSON or YAML;
Evio's net-conf.json with podCIDR, nodeBits and dataStore is accepted), then defaults.

Exit status:
${exits}
`;
}

function sourcesFrom(opts: Opts, attr: Map<SettingName, string>, deps: CliDeps): Sources {
  const flags: Partial<Record<SettingName, string>> = {};
  for (const [name, key] of attr) if (typeof opts[key] === 'string') flags[name] = opts[key] as string;
  const configPath = (opts.config as string | undefined) ?? (deps.env.WARREN_CONFIG || undefined);
  const file: FileSettings = configPath ? readConfigFile(configPath) : {};
  return { flags, env: deps.env, file, hostname: deps.hostname };
}

async function warnIfAuthOff(store: EtcdStore, deps: CliDeps): Promise<void> {
  if (!(await etcdAuthEnabled(store))) deps.stderr(`${PROGRAM}: warning: ${authOffWarning(store.endpoints)}\n`);
}

async function withStore<T>(config: StoreConfig, deps: CliDeps, fn: (store: EtcdStore) => Promise<T>,
  { warnIfAuthOff: check } = { warnIfAuthOff: true }): Promise<T> {
  const store = new EtcdStore(config.etcd, { clock: deps.clock, onRetry: (m) => deps.stderr(`${PROGRAM}: ${m}\n`) });
  try {
    if (check) await warnIfAuthOff(store, deps);
    return await fn(store);
  } finally {
    store.close();
  }
}

export function buildProgram(deps: CliDeps): Command {
  const attr = new Map<SettingName, string>();
  const program = new Command(PROGRAM)
    .description('Gives this node its own pod subnet and host-overlay address, recorded in etcd, and writes its CNI config.')
    .exitOverride()
    .configureOutput({ writeOut: deps.stdout, writeErr: deps.stderr, outputError: () => undefined })
    .addOption(new Option('--config <file>', 'JSON or YAML file with the settings below (env WARREN_CONFIG)'))
    // Before Kubernetes (the agent's host overlay, for kubeadm join) the node needs its
    // allocation but no conflist yet: a conflist makes the runtime report the network ready.
    .addOption(new Option('--no-conflist', 'allocate and write node.json only; the DaemonSet writes the conflist later'));
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const hint = spec.default ? `; default ${spec.default}` : '';
    const option = new Option(`${spec.flag} <${spec.arg}>`, `${spec.help} (env ${spec.env}${hint})`);
    attr.set(name, option.attributeName());
    program.addOption(option);
  }
  program.addHelpText('after', helpFooter());

  program.action(async (opts: Opts) => {
    const config = resolveAllocate(sourcesFrom(opts, attr, deps));
    // The store is built first: it checks endpoints and reads certificates, without
    // connecting, so that every input problem shows before anything is looked up.
    const writeConflist = opts.conflist !== false;
    // Bad input (the etcd settings, then the MTU) before etcd is asked anything, its auth included.
    const r = await withStore(config, deps, async (store) => {
      const mtu = await decideMtu(config, deps.runner);
      await warnIfAuthOff(store, deps);
      return generate(config, store, mtu, { writeConflist });
    }, { warnIfAuthOff: false });
    const a = r.allocation;
    const conflist = r.conflist ? `${r.conflist.path} ${r.conflist.outcome}` : 'no conflist (--no-conflist)';
    deps.stdout(`${a.node}: pod subnet ${a.podSubnet}, gateway ${a.gateway}, host address ${a.hostAddress}, mtu ${r.mtu}` +
      ` (${r.created ? 'newly allocated' : 'already allocated'}); ${conflist}; ${r.nodeFile.path} ${r.nodeFile.outcome}\n`);
  });

  program.command('release')
    .description('frees a node\'s pod subnet and host-overlay address in etcd')
    .requiredOption('--node <name>', 'the node to release')
    .action(async (_opts: Opts, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as Opts;
      const config = resolveStore(sourcesFrom(opts, attr, deps));
      const node = opts.node as string;
      const problem = nodeNameProblem(node);
      if (problem) throw new ConfigError(`--node ${JSON.stringify(node)} ${problem}`);
      const freed = await withStore(config, deps, (store) => release(store, config.keys, node));
      deps.stdout(freed
        ? `${node}: released pod subnet ${freed.podSubnet} and host address ${freed.hostAddress}\n`
        : `${node}: holds no allocation, nothing to release\n`);
    });

  program.command('list')
    .description('shows every allocation')
    .option('--json', 'print JSON instead of a table')
    .action(async (_opts: Opts, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as Opts;
      const config = resolveStore(sourcesFrom(opts, attr, deps));
      const listing = await withStore(config, deps, (store) => listAllocations(store, config.keys));
      deps.stdout(opts.json ? JSON.stringify(listing, null, 2) + '\n' : formatTable(listing));
    });

  addAdminCommands(program, {
    stdout: deps.stdout,
    stderr: deps.stderr,
    sources: (opts) => sourcesFrom(opts, attr, deps),
    withStore: (config, fn, options) => withStore(config, deps, fn, options),
  });
  return program;
}

/** Runs the CLI; returns the exit status. Failures print one line, never a stack trace. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  try {
    await buildProgram(deps).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end up here too, with status 0.
      if (err.exitCode === 0) return 0;
      deps.stderr(`${PROGRAM}: ${err.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    const status = exitStatusOf(err);
    deps.stderr(`${PROGRAM}: ${status === 1 ? 'internal error: ' : ''}${errorMessage(err)}\n`);
    return status;
  }
}

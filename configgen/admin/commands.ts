// `warren-configgen admin ...`: what needs more power than a node's credential (issue 10):
// the pool, etcd's users and roles, a node's allocation, and cleaning up after a node. Run
// with the admin's credential, a client certificate with CN=root; each command is
// idempotent (identity.ts, etcd-auth.ts).
import type { Command } from 'commander';
import { StorePermissionError } from '../../lib/etcd/errors.js';
import type { EtcdStore } from '../../lib/etcd/store.js';
import { nodeNameProblem } from '../../lib/names.js';
import { ConfigError } from '../errors.js';
import { resolveOptionalPool, resolvePool, resolveStore, type Sources, type StoreConfig } from '../settings.js';
import { adminAddNode } from './add-node.js';
import { describePermissions, identityProblem, nodeRoleName, ROOT, TURN_ISSUER } from './identity.js';
import { adminInit } from './init.js';
import { adminRemoveNode } from './remove-node.js';
import { runTurnIssuer } from './turn-issuer.js';
import { DEFAULT_TURN_TTL_SEC, MIN_TURN_TTL_SEC } from '../../lib/turn-credential.js';
import { readSecretFile } from '../../lib/secret-file.js';
import { parseDuration } from '../settings.js';

type Opts = Record<string, unknown>;

export interface AdminContext {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The settings from flags, environment and --config file, as every command reads them. */
  sources(opts: Opts): Sources;
  withStore<T>(config: StoreConfig, fn: (store: EtcdStore) => Promise<T>, options: { warnIfAuthOff: boolean }): Promise<T>;
}

/** Checked before anything else: a bad name changes nothing. */
function checkNodeName(name: string): void {
  const problem = nodeNameProblem(name) ?? identityProblem(name);
  if (problem) throw new ConfigError(`node name ${JSON.stringify(name)} ${problem}`);
}

/** A refusal names the credential the admin commands need: the usual mistake is a node's certificate. */
async function asAdmin<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof StorePermissionError)) throw err;
    throw new StorePermissionError(`${err.message}: the admin commands need etcd's ${ROOT} user, ` +
      `a client certificate with CN=${ROOT} (--etcd-cert, --etcd-key)`, { cause: err });
  }
}

export function addAdminCommands(program: Command, ctx: AdminContext): void {
  const admin = program.command('admin')
    .description('sets up and changes etcd authentication: node identities, allocations, the pool (admin credential, CN=root)')
    .usage('<command> [options]')
    // Its own message for a missing or unknown command (commander's would print the help and exit 1).
    .argument('[command]')
    .action((command: string | undefined) => {
      const given = command === undefined ? 'needs a command' : `has no command ${JSON.stringify(command)}`;
      throw new ConfigError(`admin ${given}: init, add-node, remove-node or turn-issuer (warren-configgen admin --help)`);
    });

  admin.command('init')
    .description('stores the pool (--pod-cidr, --node-bits, --host-cidr), creates etcd\'s root user, turns etcd authentication on')
    .action(async (_opts: Opts, cmd: Command) => {
      const sources = ctx.sources(cmd.optsWithGlobals());
      const config = resolveStore(sources);
      const pool = resolvePool(sources);
      // No warning here: authentication being off is what this command ends.
      const r = await ctx.withStore(config, (store) => asAdmin(() => adminInit(store, config.keys, pool)), { warnIfAuthOff: false });
      const p = pool.params;
      ctx.stdout(`pool ${p.podCIDR} nodeBits ${p.nodeBits}, host CIDR ${p.hostCIDR}: ${r.poolStored ? 'stored' : 'already stored'} at ${config.keys.pool}\n` +
        `etcd user ${ROOT} with role ${ROOT}: ${r.root}\n` +
        `etcd user ${TURN_ISSUER} with role ${TURN_ISSUER} (reads ${config.keys.nodes}, writes ${config.keys.credentials}): ${r.issuer}\n` +
        `etcd authentication: ${r.authEnabled ? 'turned on' : 'already on'}; each node now needs \`warren-configgen admin add-node NAME\` ` +
        'and a client certificate with CN=NAME\n');
    });

  admin.command('add-node')
    .description('allocates a node\'s pod subnet and host address and gives it an etcd user and role that write only its own record')
    .argument('<name>', 'the node (its Kubernetes name; its certificate\'s CN)')
    .option('--gateway-candidate', 'the node may also hold the SD-EWAN gateway key (without it, that right is taken away)')
    .action(async (name: string, _opts: Opts, cmd: Command) => {
      checkNodeName(name);
      const opts = cmd.optsWithGlobals() as Opts;
      const sources = ctx.sources(opts);
      const config = resolveStore(sources);
      const pool = resolveOptionalPool(sources);
      const r = await ctx.withStore(config, (store) => asAdmin(() => adminAddNode(store, config.keys, pool, name, opts.gatewayCandidate === true)),
        { warnIfAuthOff: true });
      const a = r.allocation;
      ctx.stdout(`${a.node}: pod subnet ${a.podSubnet}, gateway ${a.gateway}, host address ${a.hostAddress} (${r.created ? 'newly allocated' : 'already allocated'})\n` +
        `${a.node}: etcd user ${r.identity.user} ${r.user}, role ${r.identity.role} ${r.role}: ${describePermissions(r.identity.permissions)}\n`);
    });

  admin.command('remove-node')
    .description('takes a node\'s etcd user and role away, releases its allocation, deletes its record (and the gateway key if it holds it)')
    .argument('<name>', 'the node')
    .action(async (name: string, _opts: Opts, cmd: Command) => {
      checkNodeName(name);
      const config = resolveStore(ctx.sources(cmd.optsWithGlobals()));
      const r = await ctx.withStore(config, (store) => asAdmin(() => adminRemoveNode(store, config.keys, name)), { warnIfAuthOff: true });
      const freed = r.released ? `released pod subnet ${r.released.podSubnet} and host address ${r.released.hostAddress}` : 'held no allocation';
      const gone = (what: string, deleted: boolean) => `${what} ${deleted ? 'deleted' : 'absent'}`;
      ctx.stdout(`${name}: ${freed}; ${gone(`etcd user ${name}`, r.userDeleted)}, ${gone(`role ${nodeRoleName(name)}`, r.roleDeleted)}` +
        `${r.gatewayDropped ? '; it held the gateway key, now free' : ''}\n`);
    });

  admin.command('turn-issuer')
    .description(`keeps every node's expiring TURN credential (coturn's use-auth-secret) in etcd, renewed at half its life; runs until stopped (credential CN=${TURN_ISSUER}, or root)`)
    .requiredOption('--turn-secret-file <path>', 'the file holding coturn\'s static-auth-secret (mode 0600)')
    .option('--turn-ttl <duration>', `how long a credential lasts (e.g. 12h, 30m; at least ${MIN_TURN_TTL_SEC}s)`, `${DEFAULT_TURN_TTL_SEC / 3600}h`)
    .action(async (_opts: Opts, cmd: Command) => {
      const opts = cmd.optsWithGlobals() as Opts;
      const ttlText = String(opts.turnTtl);
      const ttlMs = parseDuration(ttlText);
      if (ttlMs === undefined || ttlMs < MIN_TURN_TTL_SEC * 1000) {
        throw new ConfigError(`--turn-ttl ${JSON.stringify(ttlText)} must be a duration of at least ${MIN_TURN_TTL_SEC}s (e.g. 12h)`);
      }
      const path = String(opts.turnSecretFile);
      const secret = readSecretFile('--turn-secret-file', path).toString('utf8').trim();
      if (secret === '') throw new ConfigError(`--turn-secret-file ${path} is empty: it must hold coturn's static-auth-secret`);
      const config = resolveStore(ctx.sources(opts));
      const ttlSec = Math.floor(ttlMs / 1000);
      ctx.stdout(`issuing TURN credentials valid ${ttlSec} s to every node under ${config.keys.nodes}, at ${config.keys.credentials}<node>/turn\n`);
      // The process ends on SIGTERM or SIGINT (main.ts); each write is whole.
      await ctx.withStore(config, (store) => runTurnIssuer(store, config.keys, {
        secret, ttlSec, signal: new AbortController().signal, log: (line) => ctx.stderr(`warren-configgen: ${line}\n`),
      }), { warnIfAuthOff: true });
    });
}

// The plugin as a function of {env, stdin, stdout}: parse, dispatch to one module per
// verb, print the result or the spec's error JSON. Testable in-process.
import { CALL_DONE as DONE } from '../lib/cni-log.js';
import type { Runner } from '../lib/runner.js';
import { spawnRunner } from '../lib/spawn-runner.js';
import { decodeConfig, parseConfig } from './config.js';
import { defaultOvsdbAddress } from '../lib/ovsdb/client.js';
import { CACHE_DIR, connectPerUse, type Context, type OvsdbConnect } from './context.js';
import { parseCniEnv } from './env.js';
import { CniCode, CniError, toCniError } from './errors.js';
import { fileLogger, silentLogger, type Logger } from './log.js';
import { FencedError } from './resident/fence.js';
import type { RecentSteps } from './recent-steps.js';
import { convertResult } from './result.js';
import { add } from './verbs/add.js';
import { check } from './verbs/check.js';
import { del } from './verbs/del.js';
import { gc } from './verbs/gc.js';
import { status } from './verbs/status.js';
import { compareVersions, isSupported, LATEST_VERSION, SUPPORTED_VERSIONS, VERB_MIN_VERSION } from './versions.js';

export interface PluginIo {
  env: Record<string, string | undefined>;
  stdin: string;
  stdout: (text: string) => void;
  runner?: Runner;
  cacheDir?: string;
  /** The resident server's long-lived OVSDB connections; a connection per use otherwise. */
  ovsdb?: OvsdbConnect;
  ipamVersions?: Map<string, string[]>;
  recentSteps?: RecentSteps;
  /** Why the shim did not get an answer from the resident server, when it execs this plugin instead: logged. */
  fallback?: string;
}

/** Every command with its duration and status in the log: where an ADD spent its time. */
function loggedRunner(runner: Runner, logger: Logger): Runner {
  return async (file, args, options) => {
    const started = performance.now();
    const cmd = [file, ...args].join(' ');
    try {
      const r = await runner(file, args, options);
      logger.log('info', 'command', { cmd, ms: Math.round(performance.now() - started), exitCode: r.exitCode });
      return r;
    } catch (err) {
      logger.log('warn', 'command failed', { cmd, ms: Math.round(performance.now() - started), error: String(err) });
      throw err;
    }
  };
}

/** The version errors are reported in: the config's when it is readable and supported. */
function replyVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (typeof v === 'string' && isSupported(v)) return v;
  } catch {
    // unreadable config: answer in the newest version
  }
  return LATEST_VERSION;
}

export async function dispatch(io: PluginIo): Promise<number> {
  const started = Date.now();
  const elapsed = (): number => Date.now() - started;
  const version = replyVersion(io.stdin);
  let logger: Logger = silentLogger;
  try {
    const env = parseCniEnv(io.env);
    if (env.command === 'VERSION') {
      io.stdout(JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS }) + '\n');
      return 0;
    }
    const config = parseConfig(decodeConfig(io.stdin));
    const minimum = VERB_MIN_VERSION[env.command]!;
    if (compareVersions(config.cniVersion, minimum) < 0) {
      throw new CniError(CniCode.IncompatibleVersion, `${env.command} needs cniVersion ${minimum} or later, the config has ${config.cniVersion}`);
    }
    if (config.logFile) {
      logger = fileLogger(config.logFile, { verb: env.command, containerId: env.containerId || undefined, ifname: env.ifname || undefined });
      if (io.fallback) logger.log('info', 'standalone: the resident server did not answer', { reason: io.fallback });
    }
    const ctx: Context = {
      env,
      config,
      runner: config.logFile ? loggedRunner(io.runner ?? spawnRunner, logger) : (io.runner ?? spawnRunner),
      logger,
      ovs: { db: config.ovsdb },
      ovsdbAddress: config.ovsdb ?? defaultOvsdbAddress(io.env),
      ovsdb: io.ovsdb ?? connectPerUse,
      cacheDir: io.cacheDir ?? CACHE_DIR,
      ipamVersions: io.ipamVersions,
      recentSteps: io.recentSteps,
    };
    // Every call ends with one line naming its verb and duration, ok or not: the agent
    // counts CNI calls and their durations from these lines (node-agent/metrics/cni-log.ts).
    switch (env.command) {
      case 'ADD': {
        const result = await add(ctx);
        io.stdout(JSON.stringify(convertResult(result, config.cniVersion)) + '\n');
        logger.log('info', DONE.ADD, { ms: elapsed(), ips: result.ips.map((i) => i.address) });
        break;
      }
      case 'DEL':
        await del(ctx);
        logger.log('info', DONE.DEL, { ms: elapsed() });
        break;
      case 'CHECK':
        await check(ctx);
        logger.log('info', DONE.CHECK, { ms: elapsed() });
        break;
      case 'GC':
        await gc(ctx);
        logger.log('info', DONE.GC, { ms: elapsed() });
        break;
      case 'STATUS':
        await status(ctx);
        logger.log('info', DONE.STATUS, { ms: elapsed() });
        break;
    }
    return 0;
  } catch (err) {
    // Stopped by the resident server's fence: no answer, the executable redoes the call and
    // logs its own end. An error line here would count a failed call that never reached anyone.
    if (err instanceof FencedError) {
      logger.log('warn', err.message, { ms: elapsed() });
      return 1;
    }
    const e = toCniError(err);
    logger.log('error', e.message, { code: e.cniCode, details: e.details, ms: elapsed() });
    io.stdout(JSON.stringify(e.toJSON(version)) + '\n');
    return 1;
  }
}

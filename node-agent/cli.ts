// warren-agent's commands: `run` (the daemon: systemd before the node joins Kubernetes,
// the DaemonSet's main container after) and `status` (a person's view of the running one).
import { readFileSync } from 'node:fs';
import { checkSecretHolder, readSecretFile } from '../lib/secret-file.js';
import { Command, CommanderError } from 'commander';
import { GatewayIdentityError } from './gateway/gateway-role.js';
import { StoreConfigError } from '../lib/etcd/errors.js';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { Agent, type Log } from './agent.js';
import { AgentConfigError, parseAgentConfig, type AgentConfig } from './config.js';
import { NodeFileError } from '../lib/node-file.js';
import { formatStatus, readStatus } from './status.js';

/** Bad input (exit 2): the agent's config, the node file configgen wrote, etcd settings, the etcd prefix. */
const BAD_INPUT = [AgentConfigError, NodeFileError, StoreConfigError, ConfigError, GatewayIdentityError];

export const PROGRAM = 'warren-agent';
export const DEFAULT_CONFIG = '/etc/warren/agent.yaml';

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  log?: Log;
  /** Resolves when the daemon should stop (SIGTERM, SIGINT). */
  stopSignal: Promise<string>;
}

function loadConfig(path: string, env: CliIo['env']): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentConfigError(`config file ${path} cannot be read: ${errorMessage(err)}`, { cause: err });
  }
  const config = parseAgentConfig(path, text, env);
  // A password inline makes the whole file a secret (the DaemonSet's passwordFile does not).
  if (config.turn?.password !== undefined) checkSecretHolder('config file with turn.password inline:', path);
  // Checked at start, where a refusal stops the agent (exit 2), not first when the relay is.
  if (config.turn?.passwordFile !== undefined) readSecretFile('turn.passwordFile', config.turn.passwordFile);
  return config;
}

/** Exit statuses: 0 fine, 1 failed while running, 2 bad configuration or node.json. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let code = 0;
  const program = new Command(PROGRAM)
    .description('Warren node agent: encrypted host and pod overlays across NATs')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  program.command('run')
    .description('run the agent until SIGTERM or SIGINT')
    .option('-c, --config <file>', 'agent config file (JSON or YAML)', DEFAULT_CONFIG)
    .action(async (o: { config: string }) => {
      const agent = new Agent(loadConfig(o.config, io.env), io.log);
      await agent.start();
      // An agent that handed over to a new one (handover.ts) has closed everything: the
      // process stays until told to stop, or its DaemonSet pod would be restarted and ask back.
      const alive = setInterval(() => {}, 2 ** 30);
      const signal = await io.stopSignal;
      clearInterval(alive);
      io.log?.('info', 'stopping; the interface, its peers and routes stay for the next agent', { signal });
      await agent.stop();
    });
  program.command('status')
    .description('peers, paths, endpoints, handshakes and traffic of the running agent')
    .option('-c, --config <file>', 'agent config file, to find the status socket', DEFAULT_CONFIG)
    .option('--socket <path>', 'the status socket (overrides the config file)')
    .option('--json', 'print the status as JSON')
    .action(async (o: { config: string; socket?: string; json?: boolean }) => {
      const socket = o.socket ?? loadConfig(o.config, io.env).statusSocket;
      const status = await readStatus(socket);
      io.stdout(o.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status));
    });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.stderr(`${PROGRAM}: ${errorMessage(err)}\n`);
    code = BAD_INPUT.some((k) => err instanceof k) ? 2 : 1;
  }
  return code;
}

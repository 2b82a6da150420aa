// Which of Warren's programs a start of the one executable means. Pure.
//
// A node carries one executable, `warren`, and links to it named after each program. The
// name it was started under decides (warren-cni, warren-configgen, warren-agent); under
// any other name (`warren` itself) a first argument naming a program does (`warren agent
// run ...`), and without one the CNI plugin runs when CNI_COMMAND is set: runtimes execute
// a plugin by its config's `type`, and Warren's is "warren".
import { basename } from 'node:path';

export type Program = 'cni' | 'cni-server' | 'configgen' | 'agent';

/** The names a link to the executable can have, and the program each starts. */
export const PROGRAM_NAMES: Readonly<Record<string, Program>> = {
  'warren-cni': 'cni',
  'warren-configgen': 'configgen',
  'warren-agent': 'agent',
  'warren-cni-server': 'cni-server',
};

const SUBCOMMANDS: Readonly<Record<string, Program>> = { cni: 'cni', 'cni-server': 'cni-server', configgen: 'configgen', agent: 'agent' };

export const USAGE = `usage: warren agent|configgen|cni|cni-server [arguments]
  warren agent ...      the node agent (as warren-agent)
  warren configgen ...  the node's subnet and CNI config (as warren-configgen)
  warren cni            the CNI plugin (as warren-cni; runtimes run it as "warren" with CNI_COMMAND set)
  warren cni-server     the resident CNI server the plugin hands its calls to (as warren-cni-server)
`;

export type Choice = { program: Program; dropFirstArgument: boolean } | { usage: string };

/** `argv0`: the name the process was started under; `args`: its arguments after that. */
export function chooseProgram(argv0: string, args: readonly string[], env: NodeJS.ProcessEnv): Choice {
  const byName = PROGRAM_NAMES[basename(argv0)];
  if (byName) return { program: byName, dropFirstArgument: false };
  const bySubcommand = args[0] === undefined ? undefined : SUBCOMMANDS[args[0]];
  if (bySubcommand) return { program: bySubcommand, dropFirstArgument: true };
  if (env.CNI_COMMAND !== undefined) return { program: 'cni', dropFirstArgument: false };
  return { usage: args[0] === undefined ? USAGE : `warren: unknown program ${JSON.stringify(args[0])}\n${USAGE}` };
}

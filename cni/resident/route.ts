// Which path a call takes, decided before and after trying the resident server. Pure.
import { DEFAULT_RESIDENT_SOCKET, residentSocketProblem } from '../../lib/cni-resident.js';

/**
 * The socket to try (and the config read on the way), or undefined to work standalone at once: VERSION needs nobody, and a
 * config that cannot be read (or names an unusable socket) gets its error from the
 * standalone path, which is where the server would have found it too.
 */
export function residentRoute(command: string | undefined, stdin: string): { socket: string; config: object } | undefined {
  if (command === 'VERSION') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch {
    return undefined;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const socket = (raw as { residentSocket?: unknown }).residentSocket;
  if (socket === undefined) return { socket: DEFAULT_RESIDENT_SOCKET, config: raw };
  return residentSocketProblem(socket) ? undefined : { socket: socket as string, config: raw };
}

/**
 * Whether the standalone path runs a DEL before the verb, after the server did not answer. An ADD the server may have
 * begun left a partial attachment whose IPAM allocation host-local would refuse to make
 * twice ("duplicate allocation is not allowed"): a DEL clears it first, as a runtime does
 * before it retries. Every other verb can simply be repeated.
 */
export function delFirst(command: string | undefined, serverMayHaveStarted: boolean): boolean {
  return command === 'ADD' && serverMayHaveStarted;
}

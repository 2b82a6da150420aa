// A whole agent life in one process, for the restart test: open the backend, reconcile
// once, print what happened, then die by SIGKILL as a crashed agent would (no cleanup,
// no exit handlers). Runs inside the node's namespace, as the agent runs on a node.
import { execRunner } from '../../../../lib/runner.js';
import { reconcileOverlay } from '../../../../node-agent/overlay/reconcile.js';
import type { OverlayInput } from '../../../../node-agent/overlay/plan.js';
import { openBackend } from '../../../../node-agent/wireguard/backend.js';
import { WireguardGoBackend } from '../../../../node-agent/wireguard/wireguard-go-backend.js';

const { ifname, logPath, input } = JSON.parse(process.argv[2]!) as { ifname: string; logPath: string; input: OverlayInput };
const backend = await openBackend({ ifname, runner: execRunner, logPath });
const r = await reconcileOverlay(backend, execRunner, input);
const pid = backend instanceof WireguardGoBackend ? backend.pid : undefined;
process.stdout.write(JSON.stringify({ ensured: r.ensured, changes: r.changes, pid }) + '\n', () => process.kill(process.pid, 'SIGKILL'));

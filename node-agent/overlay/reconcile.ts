// One reconcile pass of the node's overlay: make sure the device exists, read it,
// compare with the plan, close the gap. Repeating it with the same input changes
// nothing, so the agent runs it on every change of the peer set and on a timer.
import type { Runner } from '../../lib/runner.js';
import type { EnsureAction, WireguardBackend } from '../wireguard/backend.js';
import { readActualOverlay } from './actual.js';
import { applyOverlay } from './apply.js';
import { diffOverlay, type OverlayChanges } from './diff.js';
import { planOverlay, type OverlayInput, type RejectedPeer } from './plan.js';

export interface ReconcileResult {
  ensured: EnsureAction;
  changes: OverlayChanges;
  rejected: RejectedPeer[];
}

export async function reconcileOverlay(backend: WireguardBackend, runner: Runner, input: OverlayInput): Promise<ReconcileResult> {
  // Planned first: a bad input fails before anything on the node is touched.
  const { desired, rejected } = planOverlay(input);
  const ensured = await backend.ensureInterface();
  const actual = await readActualOverlay(runner, backend.ifname);
  const changes = diffOverlay(desired, actual, backend.ifname);
  await applyOverlay(runner, backend.ifname, desired, changes);
  return { ensured, changes, rejected };
}

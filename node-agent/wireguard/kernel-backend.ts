// The in-kernel implementation: the link is the whole device, nothing to supervise.
import { CommandError } from '../../lib/errors.js';
import { deleteLink } from '../../lib/links.js';
import type { Runner } from '../../lib/runner.js';
import type { EnsureAction, WireguardBackend } from './backend.js';
import { InterfaceConflictError, KernelWireguardUnavailableError } from './errors.js';
import { readExistingLink } from './link-kind.js';

export class KernelBackend implements WireguardBackend {
  readonly kind = 'kernel';
  constructor(readonly ifname: string, private readonly runner: Runner) {}

  async ensureInterface(): Promise<EnsureAction> {
    const existing = await readExistingLink(this.runner, this.ifname);
    if (existing === 'wireguard') return 'adopted';
    if (existing !== undefined) throw new InterfaceConflictError(`${this.ifname} exists as a ${existing} link, not a kernel WireGuard one`);
    const r = await this.runner('ip', ['link', 'add', this.ifname, 'type', 'wireguard'], { allowFailure: true });
    if (r.exitCode !== 0) {
      throw new KernelWireguardUnavailableError(`cannot create kernel WireGuard interface ${this.ifname}: ${r.stderr.trim()}`);
    }
    return 'created';
  }

  /** The kernel serves its own links: there is no daemon that could die. */
  async serving(): Promise<boolean> {
    return true;
  }

  async destroy(): Promise<void> {
    await deleteLink(this.runner, this.ifname);
  }
}

// One class per way the WireGuard device can fail to come up, each with a stable code.
import { WarrenError } from '../../lib/errors.js';

/** The configured name is taken by a link that is not WireGuard, or by another namespace's wireguard-go. */
export class InterfaceConflictError extends WarrenError {
  constructor(message: string) {
    super('WIREGUARD_INTERFACE_CONFLICT', message);
  }
}

/** Kernel WireGuard was asked for and this kernel cannot create the link. */
export class KernelWireguardUnavailableError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WIREGUARD_KERNEL_UNAVAILABLE', message, options);
  }
}

/** wireguard-go exited, or never opened its control socket, within the start timeout. */
export class WireguardGoStartError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WIREGUARD_GO_START_FAILED', message, options);
  }
}

/** wireguard-go would not go away when the device was destroyed. */
export class WireguardGoStopError extends WarrenError {
  constructor(message: string) {
    super('WIREGUARD_GO_STOP_FAILED', message);
  }
}

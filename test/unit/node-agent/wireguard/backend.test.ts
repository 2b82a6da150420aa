// The decisions of the backends; the actions are proven on real namespaces in
// test/integration/node-agent/wireguard.
import { describe, expect, it } from 'vitest';
import { chooseBackend, type BackendFacts } from '../../../../node-agent/wireguard/backend.js';
import { InterfaceConflictError } from '../../../../node-agent/wireguard/errors.js';
import { inNetnsCommand } from '../../../../node-agent/wireguard/launch.js';
import { linkKind } from '../../../../node-agent/wireguard/link-kind.js';
import { decideWireguardGo } from '../../../../node-agent/wireguard/wireguard-go-backend.js';

const facts = (f: Partial<BackendFacts>): BackendFacts => ({ existing: undefined, kernelModuleLoaded: false, prefer: 'auto', ...f });

describe('chooseBackend', () => {
  it('adopts the implementation of an existing interface whatever is preferred', () => {
    expect(chooseBackend(facts({ existing: 'wireguard', prefer: 'wireguard-go' }), 'wg0')).toBe('kernel');
    expect(chooseBackend(facts({ existing: 'tun', kernelModuleLoaded: true, prefer: 'kernel' }), 'wg0')).toBe('wireguard-go');
  });

  it('refuses a name held by another kind of link', () => {
    expect(() => chooseBackend(facts({ existing: 'other' }), 'wg0')).toThrow(InterfaceConflictError);
  });

  it('takes the kernel when its module is loaded, probes when it is not, obeys a preference', () => {
    expect(chooseBackend(facts({ kernelModuleLoaded: true }), 'wg0')).toBe('kernel');
    expect(chooseBackend(facts({}), 'wg0')).toBe('probe-kernel');
    expect(chooseBackend(facts({ prefer: 'wireguard-go', kernelModuleLoaded: true }), 'wg0')).toBe('wireguard-go');
    expect(chooseBackend(facts({ prefer: 'kernel' }), 'wg0')).toBe('kernel');
  });
});

describe('decideWireguardGo', () => {
  it('adopts a live daemon, restarts a dead one on its TUN, creates both when absent', () => {
    expect(decideWireguardGo('tun', true, 'wg0')).toBe('adopt');
    expect(decideWireguardGo('tun', false, 'wg0')).toBe('start');
    expect(decideWireguardGo(undefined, false, 'wg0')).toBe('create-and-start');
  });

  it('sees another namespace answering on the shared socket path', () => {
    expect(() => decideWireguardGo(undefined, true, 'wg0')).toThrow(/another network namespace/);
  });

  it('refuses a name held by a kernel WireGuard or another link', () => {
    expect(() => decideWireguardGo('wireguard', false, 'wg0')).toThrow(InterfaceConflictError);
    expect(() => decideWireguardGo('other', true, 'wg0')).toThrow(InterfaceConflictError);
  });
});

describe('linkKind and inNetnsCommand', () => {
  it('reads the kind from ip -d -json', () => {
    expect(linkKind(undefined)).toBeUndefined();
    expect(linkKind({ linkinfo: { info_kind: 'wireguard' } })).toBe('wireguard');
    expect(linkKind({ linkinfo: { info_kind: 'tun' } })).toBe('tun');
    expect(linkKind({ linkinfo: { info_kind: 'veth' } })).toBe('other');
    expect(linkKind({})).toBe('other');
  });

  it('enters the namespace through nsenter, which execs the daemon: its pid is the daemon', () => {
    expect(inNetnsCommand('/run/netns/a', 'wireguard-go', ['-f', 'wg0'])).toEqual(['nsenter', ['--net=/run/netns/a', '--', 'wireguard-go', '-f', 'wg0']]);
    expect(inNetnsCommand(undefined, 'wireguard-go', ['-f', 'wg0'])).toEqual(['wireguard-go', ['-f', 'wg0']]);
  });
});

import { describe, expect, it } from 'vitest';
import { charonPlugins, retransmitGiveUpSeconds, strongswanConf } from '../../../../node-agent/gateway/charon.js';
import { credentialMessages, deviceIdentity, hubConnection, hubConnMessage, hubIdentity, hubOfConnection, staleConnections } from '../../../../node-agent/gateway/ipsec-plan.js';
import { activeHub, desiredRoutes, routeChanges } from '../../../../node-agent/gateway/routes.js';
import { withHubs, type HubSaState } from '../../../../node-agent/gateway/sa-state.js';

const id = { device: 'edge-1', certDer: Buffer.from('cert'), keyPem: 'KEY', caDers: [Buffer.from('root'), Buffer.from('overlay')] };
const settings = { proposals: ['aes256-sha256-modp4096'], dpdSeconds: 2, forceEncap: true };

describe('the device side of an SD-EWAN hub connection (SDEWAN.md §2.3, §7)', () => {
  it('uses SCC\'s certificate subjects as identities', () => {
    expect(deviceIdentity('edge-1')).toBe('CN=device-edge-1-cert');
    expect(hubIdentity('hub-a')).toBe('CN=hub-hub-a-cert');
  });

  it('initiates IKEv2 to the hub, asks for a virtual IP, takes 0.0.0.0/0 as the hub\'s side, and lives as the CNF\'s timers say', () => {
    const msg = hubConnMessage(id, { name: 'a', address: '203.0.113.7' }, settings) as Record<string, any>;
    expect(Object.keys(msg)).toEqual(['hub-a']);
    const c = msg['hub-a'];
    expect(c).toMatchObject({
      version: 2, remote_addrs: ['203.0.113.7'], vips: ['0.0.0.0'], proposals: ['aes256-sha256-modp4096'], encap: true, dpd_delay: '2s', keyingtries: 0,
      local: { auth: 'pubkey', certs: [id.certDer], id: 'CN=device-edge-1-cert' },
      remote: { auth: 'pubkey', id: 'CN=hub-a-cert' },
    });
    expect(c.children['hub-a']).toMatchObject({ remote_ts: ['0.0.0.0/0'], esp_proposals: ['aes256-sha256-modp4096'], start_action: 'start', dpd_action: 'restart' });
    // No local_ts: the traffic selector on our side is the virtual IP the hub assigns.
    expect(c.children['hub-a'].local_ts).toBeUndefined();
  });

  it('loads the trust anchors before the certificate and the key', () => {
    expect(credentialMessages(id).map((m) => [m.command, (m.message as { flag?: string }).flag ?? 'key'])).toEqual([
      ['load-cert', 'CA'], ['load-cert', 'CA'], ['load-cert', 'NONE'], ['load-key', 'key'],
    ]);
  });

  it('names one connection per hub and unloads only its own that are no longer wanted', () => {
    expect(hubConnection('a')).toBe('hub-a');
    expect(hubOfConnection('hub-a')).toBe('a');
    expect(hubOfConnection('hub-')).toBeUndefined();
    expect(hubOfConnection('site-to-site')).toBeUndefined();
    expect(staleConnections(['hub-a', 'hub-b', 'admin-vpn'], [{ name: 'a', address: '203.0.113.7' }])).toEqual(['hub-b']);
  });
});

describe('routing the overlay into IPsec', () => {
  const up = (hub: string, oip: string): HubSaState => ({ hub, ike: 'established', child: 'installed', oip, bytesIn: 0, bytesOut: 0 });
  const egress = { dev: 'ipsec0' };

  it('sends every range through the first hub in configured order whose tunnel is up, from that hub\'s OIP', () => {
    const states = new Map([['a', up('a', '10.10.0.5')], ['b', up('b', '10.20.0.9')]]);
    expect(activeHub(states, ['a', 'b'])?.hub).toBe('a');
    expect(desiredRoutes(states, ['a', 'b'], ['10.10.0.0/16', '10.20.0.0/16'], egress)).toEqual([
      { dst: '10.10.0.0/16', dev: 'ipsec0', src: '10.10.0.5' }, { dst: '10.20.0.0/16', dev: 'ipsec0', src: '10.10.0.5' },
    ]);
    // Hub a lost: b carries everything.
    const aDown = new Map([...states, ['a', { ...up('a', '10.10.0.5'), ike: 'connecting' as const, child: 'down' as const }]]);
    expect(desiredRoutes(aDown, ['a', 'b'], ['10.10.0.0/16'], egress)).toEqual([{ dst: '10.10.0.0/16', dev: 'ipsec0', src: '10.20.0.9' }]);
  });

  it('routes nothing while no hub is up: no traffic leaves unprotected', () => {
    expect(desiredRoutes(withHubs(new Map(), ['a']), ['a'], ['10.10.0.0/16'], egress)).toEqual([]);
  });

  it('replaces a route whose source moves in place, and removes only what is no longer wanted', () => {
    const a = { dst: '10.10.0.0/16', dev: 'ipsec0', src: '10.10.0.5' };
    const moved = { ...a, src: '10.20.0.9' };
    const gone = { dst: '10.30.0.0/16', dev: 'ipsec0', src: '10.10.0.5' };
    expect(routeChanges([a, gone], [moved])).toEqual({ add: [moved], remove: [gone] });
    expect(routeChanges([moved], [moved])).toEqual({ add: [], remove: [] });
  });
});

describe('the gateway\'s charon', () => {
  it('loads kernel-libipsec before kernel-netlink only where the kernel has no ESP', () => {
    const lib = charonPlugins('libipsec');
    expect(lib.indexOf('kernel-libipsec')).toBeLessThan(lib.indexOf('kernel-netlink'));
    expect(charonPlugins('kernel')).not.toContain('kernel-libipsec');
    expect(charonPlugins('kernel')).toEqual(expect.arrayContaining(['vici', 'kdf', 'gmp', 'x509', 'pubkey']));
  });

  it('installs no routes of its own and gives up on a silent hub within seconds, not 165', () => {
    const conf = strongswanConf({ dataPath: 'libipsec', viciSocket: '/var/lib/warren/gateway/charon.vici', logFile: '/l', retransmit: { timeoutSeconds: 1, base: 1.5, tries: 2 } });
    expect(conf).toContain('install_routes = no');
    expect(conf).toContain('socket = unix:///var/lib/warren/gateway/charon.vici');
    expect(retransmitGiveUpSeconds({ timeoutSeconds: 1, base: 1.5, tries: 2 })).toBeCloseTo(4.75);
    // strongSwan's defaults, for comparison (docs: retransmission): 165 s.
    expect(retransmitGiveUpSeconds({ timeoutSeconds: 4, base: 1.8, tries: 5 })).toBeCloseTo(165.2, 0);
  });
});

import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../../node-agent/config.js';

const env = { NODE_NAME: 'edge-1' };

describe('parseAgentConfig', () => {
  it('fills the defaults from an empty file, the node name from NODE_NAME', () => {
    const c = parseAgentConfig('/etc/warren/agent.yaml', '', env);
    expect(c).toMatchObject({
      nodeName: 'edge-1', etcdPrefix: '/warren', stateDir: '/var/lib/warren', interface: 'warren',
      listenPort: 51820, probePort: 51821, stunServers: [], turn: undefined, mtu: undefined, reconcileSeconds: 10,
    });
    expect(c.etcd).toMatchObject({ endpoints: ['http://127.0.0.1:2379'], timeoutMs: 60_000 });
  });

  it('has Kubernetes off outside a pod, on in one (the service account), on with a kubeconfig', () => {
    expect(parseAgentConfig('a.yaml', '', env).kubernetes).toEqual({ enabled: false, kubeconfig: undefined, publishPodCIDR: true });
    expect(parseAgentConfig('a.yaml', '', { ...env, KUBERNETES_SERVICE_HOST: '10.96.0.1' }).kubernetes).toEqual({ enabled: true, kubeconfig: undefined, publishPodCIDR: true });
    expect(parseAgentConfig('a.yaml', 'kubernetes: { kubeconfig: /etc/kubernetes/kubelet.conf, publishPodCIDR: false }', env).kubernetes)
      .toEqual({ enabled: true, kubeconfig: '/etc/kubernetes/kubelet.conf', publishPodCIDR: false });
    expect(parseAgentConfig('a.yaml', 'kubernetes: { enabled: false }', { ...env, KUBERNETES_SERVICE_HOST: '10.96.0.1' }).kubernetes.enabled).toBe(false);
  });

  it('serves metrics on the host-overlay address by default, on a given address, or not at all', () => {
    expect(parseAgentConfig('a.yaml', '', env)).toMatchObject({ metrics: {}, cniLogFile: '/var/log/warren/cni.log' });
    expect(parseAgentConfig('a.yaml', 'metricsAddress: "[fd00::7]:9100"\ncniLogFile: /run/cni.log', env)).toMatchObject({ metrics: { address: '[fd00::7]:9100' }, cniLogFile: '/run/cni.log' });
    expect(parseAgentConfig('a.yaml', 'metricsAddress: "off"', env).metrics).toBeUndefined();
  });

  it('reads the SD-EWAN gateway role, and names the field and value of every mistake in it', () => {
    const gateway = {
      candidates: ['edge-1', 'edge-2'], device: 'site-a', certFile: '/etc/warren/sdewan/device.crt', keyFile: '/etc/warren/sdewan/device.key',
      caFiles: ['/etc/warren/sdewan/root.crt', '/etc/warren/sdewan/overlay.crt'], hubs: [{ name: 'hub-1', address: '203.0.113.7' }],
      proposals: ['aes256-sha256-modp4096'], overlayRanges: ['10.10.0.0/16'],
    };
    const parse = (g: unknown) => parseAgentConfig('a.yaml', JSON.stringify({ gateway: g }), env);
    expect(parseAgentConfig('a.yaml', '', env).gateway).toBeUndefined();
    expect(parse(gateway).gateway).toEqual({ ...gateway, dpdSeconds: 2, exports: [] });
    expect(parse({ ...gateway, exports: [{ port: 6443, to: '172.20.0.1:6443' }, { port: 53, protocol: 'udp', to: '172.20.0.2:5353' }] }).gateway!.exports).toEqual([
      { port: 6443, protocol: 'tcp', target: '172.20.0.1', targetPort: 6443 }, { port: 53, protocol: 'udp', target: '172.20.0.2', targetPort: 5353 },
    ]);
    for (const [change, message] of [
      [{ candidates: [] }, 'gateway.candidates [] must be a non-empty list of node names'],
      [{ candidates: ['Edge_1'] }, 'gateway.candidates[0] "Edge_1"'],
      [{ device: 'Site A' }, 'gateway.device "Site A" must be the SD-EWAN device name'],
      [{ certFile: 'device.crt' }, 'gateway.certFile "device.crt" must be an absolute path'],
      [{ keyFile: undefined }, 'gateway.keyFile null is required'],
      [{ hubs: [{ name: 'hub-1', address: 'hub.example.com' }] }, 'gateway.hubs[0].address "hub.example.com" must be the hub\'s public IPv4 address'],
      [{ hubs: [{ name: 'hub-1', address: '203.0.113.7', port: 500 }] }, 'unknown field gateway.hubs[0].port'],
      [{ proposals: ['aes256 sha256'] }, 'gateway.proposals[0] "aes256 sha256" must be a proposal'],
      [{ overlayRanges: ['10.10.0.1/16'] }, 'gateway.overlayRanges[0] "10.10.0.1/16" must be an IPv4 CIDR'],
      [{ overlayRanges: ['fd00::/64'] }, 'gateway.overlayRanges[0] "fd00::/64" must be an IPv4 CIDR'],
      [{ dpdSeconds: 0 }, 'gateway.dpdSeconds 0 must be a whole number from 1 to 300'],
      [{ hub: 'x' }, 'unknown field gateway.hub'],
      [{ exports: [{ port: 6443, to: 'kubernetes.default:443' }] }, 'gateway.exports[0].to "kubernetes.default:443" must be an IPv4 address and port'],
      [{ exports: [{ port: 70000, to: '172.20.0.1:6443' }] }, 'gateway.exports[0].port 70000 must be a whole number from 1 to 65535'],
      [{ exports: [{ port: 6443, protocol: 'sctp', to: '172.20.0.1:6443' }] }, 'gateway.exports[0].protocol "sctp" must be tcp or udp'],
      [{ exports: [{ port: 6443, to: '172.20.0.1:6443' }, { port: 6443, to: '172.20.0.2:6443' }] }, 'gateway.exports[1].port 6443 is exported twice (tcp)'],
    ] as const) expect(() => parse({ ...gateway, ...change }), message).toThrow(message);
  });

  it('reads a gateway registered through SCC: no identity files, hub addresses and proposals may come from SCC', () => {
    const gateway = {
      candidates: ['edge-1'], device: 'site-a', hubs: [{ name: 'hub-1' }, { name: 'hub-2', address: '203.0.113.8' }], overlayRanges: ['10.10.0.0/16'],
      scc: { url: 'http://scc.example:31298', overlay: 'ovl', kubeconfigFile: '/etc/warren/sdewan/kubeconfig' },
    };
    const parse = (g: unknown) => parseAgentConfig('a.yaml', JSON.stringify({ gateway: g }), env).gateway!;
    expect(parse(gateway)).toMatchObject({
      scc: { url: 'http://scc.example:31298', overlay: 'ovl', kubeconfigFile: '/etc/warren/sdewan/kubeconfig', publicIps: [], timeoutSeconds: 120 },
      hubs: [{ name: 'hub-1' }, { name: 'hub-2', address: '203.0.113.8' }], proposals: [],
    });
    expect(parse(gateway).certFile).toBeUndefined();
    for (const [change, message] of [
      [{ certFile: '/etc/warren/device.crt' }, 'gateway.certFile "/etc/warren/device.crt" must not be set with gateway.scc'],
      [{ scc: { ...gateway.scc, url: 'scc.example:31298' } }, 'gateway.scc.url "scc.example:31298" must be SCC\'s http or https URL'],
      [{ scc: { ...gateway.scc, url: 'ftp://scc.example' } }, 'gateway.scc.url "ftp://scc.example" must be SCC\'s http or https URL'],
      [{ scc: { ...gateway.scc, overlay: 'Overlay 1' } }, 'gateway.scc.overlay "Overlay 1" must be the SD-EWAN overlay name'],
      [{ scc: { ...gateway.scc, kubeconfigFile: undefined } }, 'gateway.scc.kubeconfigFile null must be the absolute path'],
      [{ scc: { ...gateway.scc, publicIps: ['edge.example'] } }, 'gateway.scc.publicIps[0] "edge.example" must be an IPv4 address'],
      [{ scc: { ...gateway.scc, timeoutSeconds: 1 } }, 'gateway.scc.timeoutSeconds 1 must be a whole number from 5 to 3600'],
      [{ scc: { ...gateway.scc, token: 'x' } }, 'unknown field gateway.scc.token'],
      [{ hubs: [{ name: 'hub-1' }, { name: 'hub-1' }] }, 'gateway.hubs[1].name "hub-1" is listed twice'],
    ] as const) expect(() => parse({ ...gateway, ...change }), message).toThrow(message);
    // Without SCC, the files and every hub's address stay required.
    const { scc: _, ...manual } = gateway;
    expect(() => parse(manual)).toThrow('gateway.caFiles null must be a non-empty list');
    expect(() => parse({ ...manual, caFiles: ['/ca.crt'], proposals: ['aes256-sha256-modp4096'], hubs: [{ name: 'hub-1', address: '203.0.113.7' }] })).toThrow('gateway.certFile null is required (or gateway.scc, to have SCC issue it)');
    expect(() => parse({ ...manual, certFile: '/a.crt', keyFile: '/a.key', caFiles: ['/ca.crt'], proposals: ['aes256-sha256-modp4096'] }))
      .toThrow('gateway.hubs[0].address null must be the hub\'s public IPv4 address');
  });

  it('reads YAML with a TURN relay and STUN servers, canonicalising addresses', () => {
    const c = parseAgentConfig('a.yaml', [
      'nodeName: factory-gw',
      'etcdEndpoints: https://10.0.0.1:2379,https://10.0.0.2:2379',
      'stunServers: ["192.0.2.10:3478"]',
      'turn: { server: "192.0.2.10:3478", username: warren, passwordFile: /etc/warren/turn }',
    ].join('\n'), env);
    expect(c.nodeName).toBe('factory-gw');
    expect(c.etcd.endpoints).toEqual(['https://10.0.0.1:2379', 'https://10.0.0.2:2379']);
    expect(c.turn).toEqual({ server: '192.0.2.10:3478', issued: false, username: 'warren', password: undefined, passwordFile: '/etc/warren/turn', tcp: true, tls: undefined });
  });

  it('reaches the TURN server over TCP unless told not to, and over TLS when given one', () => {
    const c = parseAgentConfig('a.yaml', [
      'nodeName: n1',
      'turn: { server: "192.0.2.10:3478", issued: true, tcp: false, tls: { server: "192.0.2.10:0443", serverName: turn.example.org, caFile: /etc/warren/turn-ca.pem } }',
    ].join('\n'), env);
    expect(c.turn).toMatchObject({ tcp: false, tls: { server: '192.0.2.10:443', serverName: 'turn.example.org', caFile: '/etc/warren/turn-ca.pem' } });
    expect(parseAgentConfig('a.yaml', 'nodeName: n1\nturn: { server: "192.0.2.10:3478", issued: true, tls: { server: "192.0.2.10:443" } }', env).turn?.tls)
      .toEqual({ server: '192.0.2.10:443' });
  });

  it('takes issued TURN credentials (from etcd) instead of a static user', () => {
    const c = parseAgentConfig('a.yaml', 'nodeName: n1\nturn: { server: "192.0.2.10:3478", issued: true }', env);
    expect(c.turn).toEqual({ server: '192.0.2.10:3478', issued: true, username: undefined, password: undefined, passwordFile: undefined, tcp: true, tls: undefined });
  });

  it.each([
    ['an unknown field', 'stunServer: ["192.0.2.10:3478"]', /unknown field stunServer \["192.0.2.10:3478"\]/],
    ['a STUN server without port', 'stunServers: ["192.0.2.10"]', /stunServers\[0\] "192.0.2.10" must be an address and port/],
    ['a STUN server name', 'stunServers: ["stun.example:3478"]', /stunServers\[0\] "stun.example:3478"/],
    ['a port out of range', 'listenPort: 70000', /listenPort 70000 must be a whole number from 1 to 65535/],
    ['the probe port on the WireGuard port', 'listenPort: 5000\nprobePort: 5000', /probePort 5000 must differ from listenPort/],
    ['an interface name too long', 'interface: warren-overlay-01', /interface "warren-overlay-01" is longer than 15/],
    ['TURN without credentials', 'turn: { server: "192.0.2.10:3478", username: u }', /give exactly one of turn.password and turn.passwordFile/],
    ['TURN without a user', 'turn: { server: "192.0.2.10:3478" }', /turn.username undefined is required unless turn.issued is true/],
    ['issued TURN credentials with a static user too', 'turn: { server: "192.0.2.10:3478", issued: true, username: u }', /turn.username "u" cannot go with turn.issued: true/],
    ['issued TURN credentials with a password file too', 'turn: { server: "192.0.2.10:3478", issued: true, passwordFile: /p }', /turn.passwordFile "\/p" cannot go with turn.issued: true/],
    ['turn.issued as a string', 'turn: { server: "192.0.2.10:3478", issued: "yes" }', /turn.issued "yes" must be true or false/],
    ['turn.tcp as a string', 'turn: { server: "192.0.2.10:3478", issued: true, tcp: "no" }', /turn.tcp "no" must be true or false/],
    ['a TLS server without port', 'turn: { server: "192.0.2.10:3478", issued: true, tls: { server: "192.0.2.10" } }', /turn.tls.server "192.0.2.10" must be an address and port, e.g. "192.0.2.10:443"/],
    ['TLS as a string', 'turn: { server: "192.0.2.10:3478", issued: true, tls: "192.0.2.10:443" }', /turn.tls "192.0.2.10:443" must be a mapping with server/],
    ['a TLS server name that is no DNS name', 'turn: { server: "192.0.2.10:3478", issued: true, tls: { server: "192.0.2.10:443", serverName: "turn example" } }', /turn.tls.serverName "turn example" must be the DNS name/],
    ['a relative TLS CA file', 'turn: { server: "192.0.2.10:3478", issued: true, tls: { server: "192.0.2.10:443", caFile: ca.pem } }', /turn.tls.caFile "ca.pem" must be an absolute path/],
    ['an unknown TURN TLS field', 'turn: { server: "192.0.2.10:3478", issued: true, tls: { server: "192.0.2.10:443", sni: x } }', /unknown field turn.tls.sni "x"/],
    ['an unknown TURN field', 'turn: { server: "192.0.2.10:3478", username: u, password: p, realm: r }', /unknown field turn.realm "r"/],
    ['a relative state dir', 'stateDir: var/lib/warren', /stateDir "var\/lib\/warren" must be an absolute path/],
    ['an MTU below IPv6 minimum', 'mtu: 1000', /mtu 1000 must be a whole number from 1280/],
    ['a list instead of a mapping', '- a\n- b', /must hold a mapping of fields/],
    ['broken YAML', 'a: [1, 2', /neither JSON nor YAML/],
    ['an invalid node name', 'nodeName: "Edge 1"', /nodeName "Edge 1"/],
    ['kubernetes as a list', 'kubernetes: [true]', /kubernetes \[true\] must be a mapping with enabled, kubeconfig, publishPodCIDR/],
    ['an unknown kubernetes field', 'kubernetes: { kubeConfig: /etc/k }', /unknown field kubernetes.kubeConfig "\/etc\/k" in agent.yaml; known: enabled, kubeconfig, publishPodCIDR/],
    ['kubernetes.enabled as a string', 'kubernetes: { enabled: "yes" }', /kubernetes.enabled "yes" must be true or false/],
    ['kubernetes.publishPodCIDR as a number', 'kubernetes: { publishPodCIDR: 1 }', /kubernetes.publishPodCIDR 1 must be true or false/],
    ['a relative kubeconfig', 'kubernetes: { kubeconfig: kube.conf }', /kubernetes.kubeconfig "kube.conf" must be an absolute path/],
    ['Kubernetes on outside a pod without a kubeconfig', 'kubernetes: { enabled: true }', /kubernetes.enabled true needs kubernetes.kubeconfig outside a pod \(KUBERNETES_SERVICE_HOST is not set\)/],
    ['a metrics address without port', 'metricsAddress: 10.10.0.7', /metricsAddress "10.10.0.7" must be an address and port, e.g. "10.10.0.7:9477", or "off"/],
    ['a metrics address by name', 'metricsAddress: "localhost:9477"', /metricsAddress "localhost:9477"/],
    ['a metrics address that is a number', 'metricsAddress: 9477', /metricsAddress 9477 must be an address and port/],
    ['metrics turned off with false', 'metricsAddress: false', /metricsAddress false must be an address and port, e.g. "10.10.0.7:9477", or "off"/],
    ['a relative CNI log file', 'cniLogFile: cni.log', /cniLogFile "cni.log" must be an absolute path/],
    ['an empty CNI log file', 'cniLogFile: ""', /cniLogFile "" must be a non-empty string/],
  ])('refuses %s, naming the field and value', (_, text, message) => {
    expect(() => parseAgentConfig('agent.yaml', text, env)).toThrow(message);
  });
});

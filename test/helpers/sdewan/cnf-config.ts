// What SD-EWAN's OpenWrt CNF writes for strongSwan, as pure functions: the IPsec CRs that
// SCC renders for a hub-device or hub-hub connection (`scc/pkg/manager/overlay_objectmanager.go`,
// SetupConnection, icn-sdwan 48d3ca6f), the files the CNF's LuCI API saves them to
// (`cnf-openwrt/src/rest_v1/ipsec_rest.lua`, save_cert) and the ipsec.conf, ipsec.secrets
// and strongswan.conf its init script renders from them (`cnf-openwrt/src/ipsec_exec`,
// config_conn, config_remote, config_ipsec). Line order and spelling follow ipsec_exec, so
// a diff against a real CNF's /var/ipsec/ipsec.conf shows only the departures below.
//
// Departures, each forced by this machine and applied only when `lab` is given:
// - `forceencaps=yes` on every conn: kernel-libipsec carries only UDP-encapsulated ESP, and
//   two hubs on public addresses see no NAT between them (nothing changes where a NAT is).
// - no `mark=30`: this kernel has no vti link type, and kernel-libipsec's policies would
//   never match a mark that nothing sets. The hub routes into the TUN device instead.
// - `leftupdown` names the lab's own script (a VTI-free equivalent, see hub.ts and
//   device.ts) instead of /etc/updown or /etc/updown_oip, which only exist in the CNF image.
// - ipsec.conf is rendered straight into /etc/ipsec.conf (and the secrets into
//   /etc/ipsec.secrets), where ipsec_exec writes /var/ipsec/* and `include`s them: a bind
//   mount needs an existing target, and the host has no /var/ipsec (same content either way).
// - strongswan.conf lists its plugins (the CNF's set minus those Debian does not ship:
//   des, af-alg, connmark, xauth-generic; plus kdf, which 5.9.8 needs without openssl,
//   kernel-libipsec, and vici, only for tests to read SA state), and keeps the routes
//   kernel-libipsec installs whatever install_routes says out of every lookup (below).

/** An IpsecProposal CR: SCC's overlay proposal. */
export interface Proposal {
  name: string;
  encryption: string;
  hash: string;
  dhGroup: string;
}

/** The one `connections` entry of an IPsec CR, which the CNF saves as a `tunnel` section. */
export interface CnfConnection {
  name: string;
  mode: 'start' | 'add';
  mark?: string;
  localSubnet?: string;
  localSourceip?: string;
  remoteSubnet?: string;
  remoteSourceip?: string;
  localUpdown?: string;
  cryptoProposal: readonly string[];
}

/** An IpsecSite or IpsecHost CR, which the CNF saves as a `remote` section. */
export interface CnfRemote {
  name: string;
  type: 'VTI-based' | 'policy-based';
  /** The CR's `remote`: the peer's address or %any. */
  gateway: string;
  localIdentifier: string;
  remoteIdentifier: string;
  cryptoProposal: readonly string[];
  /** SCC always sends "0". */
  forceCryptoProposal: boolean;
  connection: CnfConnection;
}

/** Where the CNF's save_cert puts a remote's certificate, key and CA chain. */
export function certPaths(remote: string): { cert: string; key: string; ca: (index: number) => string } {
  return {
    cert: `/etc/ipsec.d/certs/${remote}_public_0.pem`,
    key: `/etc/ipsec.d/private/${remote}_private_0.pem`,
    ca: (index) => `/etc/ipsec.d/cacerts/${remote}_ca_${index}.pem`,
  };
}

/** The machine-forced changes listed in the header. */
export interface LabDepartures {
  /** The script the lab runs for an updown path the CNF image would have. */
  updown: (cnfPath: string) => string;
  /** Options a test adds to every conn by hand, which SCC never renders (e.g. `closeaction=restart`). */
  handEdits?: readonly string[];
}

/** SCC's format_resource_name: dashes dropped, lower case. */
export const resourceName = (a: string, b = ''): string => `${a}${b}`.replace(/-/g, '').toLowerCase();
/** SCC's format_ip_as_suffix. */
const ipSuffix = (ip: string): string => `_${ip.replace(/\./g, '')}`;
const certCn = (kind: 'hub' | 'device', name: string): string => `CN=${kind}-${name}-cert`;

/** SetupConnection, hub-to-device, the hub's IpsecSite: a responder for %any whose pool is the one data OIP. */
export function hubSideOfDevice(hub: string, device: string, oip: string, proposals: readonly Proposal[]): CnfRemote {
  const names = proposals.map((p) => p.name);
  return {
    name: resourceName(hub, device), type: 'VTI-based', gateway: '%any',
    localIdentifier: certCn('hub', hub), remoteIdentifier: certCn('device', device), cryptoProposal: names, forceCryptoProposal: false,
    connection: { name: `Conn${resourceName(device)}${ipSuffix(oip)}`, mode: 'start', mark: '30', remoteSourceip: oip, localUpdown: '/etc/updown', localSubnet: '0.0.0.0/0', cryptoProposal: names },
  };
}

/** SetupConnection, hub-to-device, the device's IpsecHost: the initiator asking for its OIP. */
export function deviceSideOfHub(device: string, hub: string, hubIp: string, proposals: readonly Proposal[]): CnfRemote {
  const names = proposals.map((p) => p.name);
  return {
    name: resourceName(device, hub), type: 'policy-based', gateway: hubIp,
    localIdentifier: certCn('device', device), remoteIdentifier: certCn('hub', hub), cryptoProposal: names, forceCryptoProposal: false,
    connection: { name: `Conn${resourceName(hub)}${ipSuffix(hubIp)}`, mode: 'start', localUpdown: '/etc/updown_oip', localSourceip: '%config', remoteSubnet: '0.0.0.0/0', cryptoProposal: names },
  };
}

/**
 * SetupConnection, hub-to-hub, called when `newHub` is created, once per existing hub: the
 * new hub only responds (mode add), the existing one initiates (mode start). Both
 * connection names keep the new-then-existing order, with each end's own IP as suffix.
 */
export function hubToHub(newHub: { name: string; ip: string }, existing: { name: string; ip: string }, proposals: readonly Proposal[]): { onNew: CnfRemote; onExisting: CnfRemote } {
  const names = proposals.map((p) => p.name);
  const end = (self: { name: string; ip: string }, peer: { name: string; ip: string }, mode: 'start' | 'add'): CnfRemote => ({
    name: resourceName(self.name, peer.name), type: 'VTI-based', gateway: peer.ip,
    localIdentifier: certCn('hub', self.name), remoteIdentifier: certCn('hub', peer.name), cryptoProposal: names, forceCryptoProposal: false,
    connection: {
      name: `Conn${resourceName(newHub.name, existing.name)}${ipSuffix(self.ip)}`, mode, mark: '30',
      localSubnet: '0.0.0.0/0', remoteSubnet: '0.0.0.0/0', localUpdown: '/etc/updown', cryptoProposal: names,
    },
  });
  return { onNew: end(newHub, existing, 'add'), onExisting: end(existing, newHub, 'start') };
}

/** set_crypto_proposal: `<enc>-<hash>-<dh>` joined by commas, `!` only when forced. */
function cryptoString(names: readonly string[], proposals: readonly Proposal[], force: boolean): string {
  const crypto = names.map((n) => {
    const p = proposals.find((x) => x.name === n);
    if (!p) throw new Error(`the CNF rejects crypto_proposal ${n}: no such IpsecProposal (LuCI answers 428)`);
    return [p.encryption, p.hash, p.dhGroup].filter((x) => x !== '').join('-');
  }).join(',');
  return crypto && force ? `${crypto}!` : crypto;
}

/** config_conn + config_tunnel for one remote's one tunnel. */
function connLines(r: CnfRemote, proposals: readonly Proposal[], lab: LabDepartures | undefined): string[] {
  const c = r.connection;
  const lines = [`conn ${r.name}-${c.name}`, '  left=%any', `  right=${r.gateway === 'any' ? '%any' : r.gateway}`];
  if (c.localSourceip) lines.push(`  leftsourceip=${c.localSourceip}`);
  if (c.localSubnet) lines.push(`  leftsubnet=${c.localSubnet}`);
  lines.push('  ikelifetime=3h', '  lifetime=1h', '  margintime=9m', '  keyingtries=%forever', '  dpdaction=restart', '  dpddelay=30s');
  lines.push('  leftauth=pubkey', '  rightauth=pubkey', `  leftcert=${certPaths(r.name).cert}`, '  leftsendcert=yes', '  rightsendcert=yes');
  if (c.remoteSourceip) lines.push(`  rightsourceip=${c.remoteSourceip}`);
  if (c.remoteSubnet) lines.push(`  rightsubnet=${c.remoteSubnet}`);
  lines.push(`  auto=${c.mode}`);
  lines.push(`  leftid="${r.localIdentifier}"`, `  rightid="${r.remoteIdentifier}"`);
  if (c.localUpdown) lines.push(`  leftupdown=${lab ? lab.updown(c.localUpdown) : c.localUpdown}`);
  lines.push('  keyexchange=ikev2');
  if (lab) lines.push('  forceencaps=yes', ...(lab.handEdits ?? []).map((o) => `  ${o}`));
  else if (r.type === 'VTI-based' && c.mark) lines.push(`  mark=${c.mark}`);
  const esp = cryptoString(c.cryptoProposal, proposals, r.forceCryptoProposal);
  const ike = cryptoString(r.cryptoProposal, proposals, r.forceCryptoProposal);
  if (esp) lines.push(`  esp=${esp}`);
  if (ike) lines.push(`  ike=${ike}`);
  lines.push('  type=tunnel');
  return lines;
}

/** The file the CNF's starter reads (ipsec_exec writes it to /var/ipsec/ipsec.conf and includes it). */
export function renderIpsecConf(remotes: readonly CnfRemote[], proposals: readonly Proposal[], lab?: LabDepartures): string {
  const lines = ['# generated by /etc/init.d/ipsec', 'version 2', ''];
  for (const r of remotes) lines.push(...connLines(r, proposals, lab), '');
  return `${lines.join('\n')}\n`;
}

/** config_remote's `echo -n` of both identities, then config_conn's ` : RSA <key>` per tunnel. */
export function renderIpsecSecrets(remotes: readonly CnfRemote[]): string {
  const lines = ['# generated by /etc/init.d/ipsec'];
  for (const r of remotes) lines.push(`${r.localIdentifier} ${r.remoteIdentifier}  : RSA ${certPaths(r.name).key}`);
  return `${lines.join('\n')}\n`;
}

export const CNF_PLUGINS = [
  'aes', 'rc2', 'sha2', 'sha1', 'md5', 'random', 'nonce', 'x509', 'revocation', 'constraints', 'pubkey', 'pkcs1', 'pgp', 'dnskey',
  'sshkey', 'pem', 'fips-prf', 'gmp', 'xcbc', 'hmac', 'attr', 'kdf', 'kernel-libipsec', 'kernel-netlink', 'resolve', 'socket-default',
  'stroke', 'updown', 'vici',
] as const;

export interface StrongswanConfOptions {
  /** is_vti_enabled: no for VTI-based remotes (hubs), yes for policy-based ones (devices); the last remote saved wins. */
  installVirtualIp: boolean;
  viciSocket: string;
  logFile: string;
  /** Where the resolve plugin would write DNS servers a peer sends: never the host's /etc/resolv.conf. */
  resolvConf: string;
}

/**
 * config_ipsec's charon section (install_routes is always no: SCC never sets
 * rtinstall_enabled). kernel-libipsec installs a route into its TUN device for every
 * outbound policy whatever install_routes says, in charon's table with a rule at
 * routing_table_prio; putting that rule after main's (32766), whose default route answers
 * every lookup, keeps those routes unused, as install_routes = no does on the CNF.
 */
export function renderStrongswanConf(o: StrongswanConfOptions): string {
  return `# generated by /etc/init.d/ipsec (and the Warren lab's departures: see cnf-config.ts)
charon {
  load_modular = no
  load = ${CNF_PLUGINS.join(' ')}
  install_virtual_ip = ${o.installVirtualIp ? 'yes' : 'no'}
  install_routes = no
  routing_table = 220
  routing_table_prio = 32767
  # kernel-libipsec keeps several workers busy for good: fewer than 9 and charon stops answering.
  threads = 16
  filelog {
    lab {
      path = ${o.logFile}
      default = 1
      ike = 2
      knl = 2
      flush_line = yes
      time_format = %H:%M:%S
    }
  }
  # The CNF logs to syslog (identifier ipsec); the lab has none, a file serves the tests.
  plugins {
    vici {
      socket = unix://${o.viciSocket}
    }
    resolve {
      file = ${o.resolvConf}
    }
  }
}
`;
}

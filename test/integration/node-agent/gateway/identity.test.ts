// The device identity a gateway candidate checks at start (real certificates as SCC issues
// them, openssl): a mistake here would otherwise surface as an IKE failure at the hub.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewaySettings } from '../../../../node-agent/config.js';
import { GatewayIdentityError, readDeviceIdentity } from '../../../../node-agent/gateway/gateway-role.js';
import { issueCert, SccPki, type IssuedCert } from '../../../helpers/sdewan/scc-server.js';

let pki: SccPki;
let dir: string;
let overlay: IssuedCert;
let device: IssuedCert;
let settings: GatewaySettings;

beforeAll(async () => {
  pki = await SccPki.create();
  dir = mkdtempSync(join(tmpdir(), 'warren-identity-'));
  overlay = await issueCert(dir, 'overlay-1-cert', pki.root, true);
  device = await issueCert(dir, 'device-site-a-cert', overlay, false);
  settings = {
    candidates: ['n1'], device: 'site-a', certFile: device.certFile, keyFile: device.keyFile, caFiles: [pki.root.certFile, overlay.certFile],
    hubs: [{ name: 'hub-1', address: '203.0.113.7' }], proposals: ['aes256-sha256-modp4096'], overlayRanges: ['10.10.0.0/16'], dpdSeconds: 2, exports: [],
  };
}, 60_000);

afterAll(() => {
  pki?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the gateway\'s device identity', () => {
  it('reads the certificate, key and CAs SCC issued', () => {
    const id = readDeviceIdentity(settings);
    expect(id.device).toBe('site-a');
    expect(id.caDers).toHaveLength(2);
    expect(id.keyPem).toContain('PRIVATE KEY');
  });

  it('names the file and what is wrong with it', () => {
    const err = (s: Partial<GatewaySettings>): unknown => {
      try {
        readDeviceIdentity({ ...settings, ...s });
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(err({ device: 'site-b' })).toBeInstanceOf(GatewayIdentityError);
    expect(String(err({ device: 'site-b' }))).toContain(`gateway.certFile ${device.certFile} is for CN=device-site-a-cert, not CN=device-site-b-cert (gateway.device site-b)`);
    expect(String(err({ certFile: join(dir, 'missing.crt') }))).toContain(`gateway.certFile ${join(dir, 'missing.crt')}: ENOENT`);
    const garbage = join(dir, 'garbage.crt');
    writeFileSync(garbage, 'not a certificate\n');
    expect(String(err({ caFiles: [garbage] }))).toContain(`gateway.caFiles[0] ${garbage} is not a PEM certificate`);
    expect(String(err({ caFiles: [pki.root.certFile] }))).toContain('was issued by none of gateway.caFiles');
  });
});

// STATUS (spec 1.1.0): fail with code 50 when an ADD could not work right now:
// the IPAM plugin is missing, OVSDB does not answer, or nft is absent while masquerading.
import { vsctl } from '../../lib/ovs.js';
import type { Context } from '../context.js';
import { CniCode, CniError } from '../errors.js';
import { findPlugin } from '../ipam.js';
import { errorMessage } from '../../lib/errors.js';

export async function status(ctx: Context): Promise<void> {
  const { config: cfg, env, runner } = ctx;
  if (!findPlugin(cfg.ipam.type, env.path)) {
    throw new CniError(CniCode.NotAvailable, `IPAM plugin ${cfg.ipam.type} not found on CNI_PATH`, env.path.join(':'));
  }
  try {
    await vsctl(runner, { ...ctx.ovs, timeoutSeconds: 3 }, [['get', 'Open_vSwitch', '.', 'ovs_version']]);
  } catch (err) {
    throw new CniError(CniCode.NotAvailable, 'Open vSwitch does not answer: the bridge cannot be made', errorMessage(err), { cause: err });
  }
  if (cfg.ipMasq) {
    const r = await runner('nft', ['--version'], { allowFailure: true }).catch(() => ({ exitCode: -1 }));
    if (r.exitCode !== 0) throw new CniError(CniCode.NotAvailable, 'nft is not installed: pod masquerading cannot be set up');
  }
}

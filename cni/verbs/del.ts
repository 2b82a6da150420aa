// DEL: release the address, remove the OVS port and the veth. Anything already gone
// (netns, link, port, allocation) counts as removed, so DEL can be repeated at will.
import { deleteLink } from '../../lib/links.js';
import { ipamCall, type Context } from '../context.js';
import { ipamDel } from '../ipam.js';
import { detachPort } from '../ovs-port.js';
import { allSettled } from '../rollback.js';
import { attachmentOf } from './add.js';

export async function del(ctx: Context): Promise<void> {
  const a = attachmentOf(ctx);
  await allSettled([
    ipamDel(ipamCall(ctx)),
    detachPort(ctx, a.hostVeth),
    // Deleting the host end takes the pod end with it, whichever netns it is in.
    deleteLink(ctx.runner, a.hostVeth),
  ]);
}

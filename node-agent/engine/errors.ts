// One class per way the traversal engine can fail, each with a stable code.
import { WarrenError } from '../../lib/errors.js';
import { formatEndpoint, type Endpoint } from '../nat/stun-address.js';

/** The STUN server answered no TTL up to the maximum: no punch TTL can be derived (the agent may fall back to PUNCH_TTL_MIN or rely on the relay). */
export class HopsUnknownError extends WarrenError {
  constructor(readonly server: Endpoint, readonly maxTtl: number, readonly attempts: number) {
    super('HOPS_UNKNOWN', `${formatEndpoint(server)} answered no Binding request with TTL 1..${maxTtl} in ${attempts} attempts`);
  }
}

import { describe, expect, it } from 'vitest';
import { keepAliveDue, nextPublishStep } from '../../../../node-agent/signal/publish-step.js';

const settled = { leaseId: '7', written: 'A', desired: 'A', keepAliveDueAt: 10_000 };

describe('nextPublishStep', () => {
  it('grants a lease first, then writes under it', () => {
    expect(nextPublishStep({ ...settled, leaseId: undefined, written: undefined }, 0)).toEqual({ do: 'grant' });
    expect(nextPublishStep({ ...settled, written: undefined }, 0)).toEqual({ do: 'put' });
  });

  it('writes when the content changed, before a due keep-alive', () => {
    expect(nextPublishStep({ ...settled, desired: 'B' }, 20_000)).toEqual({ do: 'put' });
  });

  it('with nothing changed, only keeps the lease alive when due', () => {
    expect(nextPublishStep(settled, 4_000)).toEqual({ do: 'wait', ms: 6_000 });
    expect(nextPublishStep(settled, 10_000)).toEqual({ do: 'keepalive' });
  });
});

describe('keepAliveDue', () => {
  it('spaces keep-alives a third of the TTL apart', () => {
    expect(keepAliveDue(1_000, 30, 3)).toBe(11_000);
  });
});

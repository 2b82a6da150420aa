import { describe, expect, it } from 'vitest';
import { Rollback } from '../../../cni/rollback.js';

describe('Rollback', () => {
  it('undoes newest first and keeps going when an undo fails', async () => {
    const done: string[] = [];
    const failures: string[] = [];
    const rb = new Rollback((what) => failures.push(what));
    rb.push('ipam', async () => done.push('ipam'));
    rb.push('veth', async () => {
      throw new Error('boom');
    });
    rb.push('port', async () => done.push('port'));
    await rb.unwind();
    expect(done).toEqual(['port', 'ipam']);
    expect(failures).toEqual(['veth']);
    await rb.unwind();
    expect(done).toEqual(['port', 'ipam']);
  });
});

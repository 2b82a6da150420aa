// Output whose reader goes away: dropped quietly on EPIPE, reported otherwise.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { guardedWriter } from '../../../lib/output.js';

class FakeStream extends EventEmitter {
  written: string[] = [];
  write(text: string): boolean {
    this.written.push(text);
    return true;
  }
}

const errno = (code: string) => Object.assign(new Error(`write ${code}`), { code });

describe('guardedWriter', () => {
  it('drops output quietly once the reader has gone (EPIPE)', () => {
    const stream = new FakeStream();
    const failures: Error[] = [];
    const write = guardedWriter(stream, (err) => failures.push(err));
    write('one\n');
    stream.emit('error', errno('EPIPE'));
    write('two\n');
    expect(stream.written).toEqual(['one\n']);
    expect(failures).toEqual([]);
  });

  it('reports any other write error once, and writes no more', () => {
    const stream = new FakeStream();
    const failures: Error[] = [];
    const write = guardedWriter(stream, (err) => failures.push(err));
    stream.emit('error', errno('EIO'));
    write('lost\n');
    expect(stream.written).toEqual([]);
    expect(failures.map((e) => e.message)).toEqual(['write EIO']);
  });
});

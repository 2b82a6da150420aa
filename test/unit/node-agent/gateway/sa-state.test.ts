// SA state folded from the events a real charon 5.9.8 sent (test/fixtures/vici/monitor-sa.txt:
// an SA coming up with a virtual IP, then terminated). The captured connection was named
// `hub`; it is renamed to the gateway's `hub-h1`, the rest is as charon sent it.
import { describe, expect, it } from 'vitest';
import { applyEvent, fromListSas, withHubs } from '../../../../node-agent/gateway/sa-state.js';
import type { ViciMessage } from '../../../../node-agent/gateway/vici/codec.js';
import { events, packets } from './vici-fixtures.js';

const rename = (m: ViciMessage): ViciMessage => Object.fromEntries(Object.entries(m).map(([k, v]) => [k === 'hub' ? 'hub-h1' : k, v]));
const at = new Date('2026-11-28T12:00:00Z');

describe('SA state from charon\'s events', () => {
  const captured = events('monitor-sa').map((e) => ({ ...e, message: rename(e.message) }));

  it('is established with the virtual IP as our OIP once the IKE and CHILD SAs are up, and connecting again after the deletes', () => {
    // charon reports the IKE_SA's deletion before its child's.
    expect(captured.map((e) => `${e.event}:${e.message.up ?? 'down'}`)).toEqual(['ike-updown:yes', 'child-updown:yes', 'ike-updown:down', 'child-updown:down']);
    let states = withHubs(new Map(), ['h1', 'h2']);
    const seen = captured.map((e) => {
      states = applyEvent(states, e.event, e.message, at);
      return { ...states.get('h1')! };
    });
    expect(seen[0]).toMatchObject({ ike: 'established', oip: '10.99.0.1', establishedAt: at.toISOString() });
    expect(seen[1]).toMatchObject({ ike: 'established', child: 'installed', oip: '10.99.0.1' });
    expect(seen[2]).toMatchObject({ ike: 'connecting', child: 'down', oip: undefined });
    expect(seen[3]).toEqual(seen[2]);
    // Another hub's state is untouched by events of this one.
    expect(states.get('h2')).toEqual({ hub: 'h2', ike: 'connecting', child: 'down', bytesIn: 0, bytesOut: 0 });
  });

  it('ignores connections that are not a hub\'s', () => {
    const states = withHubs(new Map(), ['h1']);
    const [up] = events('monitor-sa');
    expect(applyEvent(states, up!.event, up!.message, at)).toEqual(states);
  });

  it('takes the byte counts and the OIP from list-sas, and forgets hubs no longer configured', () => {
    const listed = packets('list-sas', 'S').flatMap((p) => ('name' in p && p.name === 'list-sa' && 'message' in p ? [rename(p.message)] : []));
    expect(listed).toHaveLength(1);
    const states = fromListSas(withHubs(new Map(), ['h1']), listed, at);
    const h1 = states.get('h1')!;
    expect(h1).toMatchObject({ ike: 'established', child: 'installed', oip: '10.99.0.1' });
    expect(h1.bytesIn).toBeGreaterThan(0);
    expect(h1.bytesOut).toBeGreaterThan(0);
    expect([...withHubs(states, ['h2']).keys()]).toEqual(['h2']);
    // Nothing listed for a hub: not established (charon holds no SA for it).
    expect(fromListSas(states, [], at).get('h1')).toMatchObject({ ike: 'connecting', child: 'down', oip: undefined });
  });
});

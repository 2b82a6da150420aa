import { describe, expect, it } from 'vitest';
import { chooseProgram, USAGE } from '../../../cmd/program.js';

describe('chooseProgram', () => {
  it('starts the program a link is named after, whatever the arguments', () => {
    expect(chooseProgram('/opt/warren/bin/warren-agent', ['run', '--config', 'a.yaml'], {})).toEqual({ program: 'agent', dropFirstArgument: false });
    expect(chooseProgram('warren-configgen', ['--help'], {})).toEqual({ program: 'configgen', dropFirstArgument: false });
    expect(chooseProgram('/opt/cni/bin/warren-cni', [], { CNI_COMMAND: 'ADD' })).toEqual({ program: 'cni', dropFirstArgument: false });
    // A link named warren-cni with an argument that names another program is still the plugin.
    expect(chooseProgram('warren-cni', ['agent'], {})).toEqual({ program: 'cni', dropFirstArgument: false });
    expect(chooseProgram('/warren/bin/warren-cni-server', ['--socket', '/run/warren/cni.sock'], {})).toEqual({ program: 'cni-server', dropFirstArgument: false });
  });

  it('as warren (or any other name), takes a first argument naming a program, dropped from its arguments', () => {
    expect(chooseProgram('/warren/bin/warren', ['agent', 'status', '--json'], {})).toEqual({ program: 'agent', dropFirstArgument: true });
    expect(chooseProgram('warren', ['configgen'], {})).toEqual({ program: 'configgen', dropFirstArgument: true });
    expect(chooseProgram('warren', ['cni-server'], {})).toEqual({ program: 'cni-server', dropFirstArgument: true });
    expect(chooseProgram('./renamed', ['cni'], { CNI_COMMAND: 'VERSION' })).toEqual({ program: 'cni', dropFirstArgument: true });
  });

  it('runs the CNI plugin as warren with CNI_COMMAND set: runtimes execute a plugin by its type, "warren"', () => {
    expect(chooseProgram('/opt/cni/bin/warren', [], { CNI_COMMAND: 'ADD' })).toEqual({ program: 'cni', dropFirstArgument: false });
    expect(chooseProgram('/opt/cni/bin/warren', [], { CNI_COMMAND: '' })).toEqual({ program: 'cni', dropFirstArgument: false });
  });

  it('answers usage without a program, and names an unknown one', () => {
    expect(chooseProgram('warren', [], {})).toEqual({ usage: USAGE });
    const unknown = chooseProgram('warren', ['agnet', 'run'], {});
    expect('usage' in unknown && unknown.usage.split('\n')[0]).toBe('warren: unknown program "agnet"');
    // A runtime's call with an odd first argument is still the plugin's to answer (with its error JSON).
    expect(chooseProgram('warren', ['agnet'], { CNI_COMMAND: 'ADD' })).toEqual({ program: 'cni', dropFirstArgument: false });
  });
});

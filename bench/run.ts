// `make bench`: every benchmark, each printing ratios against a baseline measured in
// the same run. Not timed tests: they report, they do not pass or fail.
import { existsSync } from 'node:fs';
import { benchCni } from './cni.js';

await benchCni();
// Benchmarks of programs still being written join when their file exists.
const configgenBench = './configgen.js';
if (existsSync(new URL('./configgen.ts', import.meta.url))) {
  const { benchConfiggen } = (await import(configgenBench)) as { benchConfiggen?: () => Promise<unknown> };
  if (benchConfiggen) await benchConfiggen();
}
const gatewayBench = './gateway.js';
if (existsSync(new URL('./gateway.ts', import.meta.url))) {
  const { benchGateway } = (await import(gatewayBench)) as { benchGateway?: () => Promise<unknown> };
  if (benchGateway) await benchGateway();
}
const agentBench = './agent.js';
if (existsSync(new URL('./agent.ts', import.meta.url))) {
  const { benchAgent } = (await import(agentBench)) as { benchAgent?: () => Promise<unknown> };
  if (benchAgent) await benchAgent();
}
const movingBench = './moving.js';
if (existsSync(new URL('./moving.ts', import.meta.url))) {
  const { benchMoving } = (await import(movingBench)) as { benchMoving?: () => Promise<unknown> };
  if (benchMoving) await benchMoving();
}
const scaleBench = './scale.js';
if (existsSync(new URL('./scale.ts', import.meta.url))) {
  const { benchScale } = (await import(scaleBench)) as { benchScale?: () => Promise<unknown> };
  if (benchScale) await benchScale();
}

// `make bench`: every benchmark, each printing ratios against a baseline measured in
// the same run. Not timed tests: they report, they do not pass or fail.
import { benchAgent } from './agent.js';
import { benchCni } from './cni.js';
import { benchConfiggen } from './configgen.js';
import { benchGateway } from './gateway.js';
import { benchMoving } from './moving.js';
import { benchRelay } from './relay.js';
import { benchRuntimes } from './runtimes.js';
import { benchScale } from './scale.js';

for (const bench of [benchCni, benchRuntimes, benchConfiggen, benchGateway, benchAgent, benchRelay, benchMoving, benchScale]) await bench();

// One entry for every runtime bench/runtimes.ts compares: run `main` now, or, while Node
// builds a startup snapshot (SEA `useSnapshot`), register it to run when the snapshot is
// deserialized, so that everything imported above it is already in the heap. Bun has no
// startupSnapshot.
import * as v8 from 'node:v8';

export function start(main: () => void): void {
  const snapshot = (v8 as Partial<typeof v8>).startupSnapshot;
  if (snapshot?.isBuildingSnapshot()) snapshot.setDeserializeMainFunction(main);
  else main();
}

// One class per way signalling can fail, each with a stable code. Store failures
// (unreachable, refused) keep the store's own classes from lib/etcd/errors.ts.
import { WarrenError } from '../../lib/errors.js';

/** A node record that is not what a Warren agent publishes; `where` is the etcd key or "the local record". */
export class NodeRecordError extends WarrenError {
  constructor(readonly where: string, readonly field: string, why: string, options?: { cause?: unknown }) {
    super('SIGNAL_RECORD_INVALID', `${where}: field ${field} ${why}`, options);
  }
}

/** A record about to be published carries a field named like a secret: refused, nothing written. */
export class RecordSecretError extends WarrenError {
  constructor(readonly node: string, readonly field: string) {
    super('SIGNAL_RECORD_SECRET',
      `refusing to publish the record of node ${node}: field ${field} is named like a secret, and everything in etcd is readable by every node`);
  }
}

/** etcd answers with an older revision than one already seen: it was restored from a backup, and history must be read again. */
export class StoreRewoundError extends WarrenError {
  constructor(readonly revision: string, readonly seen: string) {
    super('SIGNAL_STORE_REWOUND', `etcd is at revision ${revision}, behind revision ${seen} already seen: restored from a backup? reading all records again`);
  }
}

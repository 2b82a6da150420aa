// Name rules more than one component checks: a name refused by one is refused by all, in
// the same words. Pure.

/**
 * Interface names the kernel makes as given: 1-15 printable ASCII characters, no '/', ':',
 * white space or '%', not '.' or '..' (systemd's rule). Outside it the kernel refuses a name
 * (it counts byte 0xa0, inside many UTF-8 letters, as space) or renames it ("a%d" becomes "a0").
 */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name) > 15) return 'is longer than 15 characters';
  if (name === '.' || name === '..') return 'is not allowed';
  if (/[/:\s]/.test(name)) return 'contains "/", ":" or white space';
  if (name.includes('%')) return 'contains "%", which the kernel replaces by a number';
  if (/[^\x21-\x7e]/.test(name)) return 'contains a character outside printable ASCII';
  return undefined;
}

// Kubernetes node names are DNS subdomains; the name is also part of an etcd key.
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function nodeNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 253) return 'is longer than 253 characters';
  if (!NODE_NAME.test(name)) return 'is not a Kubernetes node name (lowercase letters, digits, "-" and ".")';
  return undefined;
}

// One base class for every Warren error: a stable `code` names the failure class and
// the original error travels on as `cause`, so logs keep the whole chain.
export class WarrenError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input: a flag, variable or file field with an unusable value. Nothing was touched; exit status 2. */
export class ConfigError extends WarrenError {
  readonly exitStatus = 2;
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
  }
}

/** A command (ip, ovs-vsctl, nft, ...) exited non-zero or could not start. */
export class CommandError extends WarrenError {
  readonly command: string;
  readonly exitCode: number | undefined;
  readonly stderr: string;
  constructor(command: string, exitCode: number | undefined, stderr: string, options?: { cause?: unknown }) {
    const why = exitCode === undefined ? 'could not be run' : `exited with status ${exitCode}`;
    super('COMMAND_FAILED', `${command} ${why}${stderr ? `: ${stderr.trim()}` : ''}`, options);
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

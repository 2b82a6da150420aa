// The contract between warren-cni, which ends every call with one log line, and
// warren-agent, which counts CNI calls and their durations from those lines (its metrics).
// Each line is a JSON object with `verb`; a successful call's last line has `msg` from
// CALL_DONE and `ms`; a failed call's has `level: "error"`, the CNI `code` and `ms`.
/** Where the plugin logs unless its config says otherwise (configgen writes it; the agent reads it). */
export const DEFAULT_CNI_LOG_FILE = '/var/log/warren/cni.log';

export const CALL_DONE = { ADD: 'added', DEL: 'deleted', CHECK: 'checked', GC: 'collected', STATUS: 'ready' } as const;

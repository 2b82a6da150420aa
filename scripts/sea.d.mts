export function sealExecutable(options: { main: string; output: string; assets?: Record<string, string>; workDir: string; snapshot?: boolean }): void;

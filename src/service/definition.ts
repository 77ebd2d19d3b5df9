/** What a service runs: the daemon's command line, its data dir, its log file and its environment. */

/** The input of both generators: everything the unit or the plist says. */
export interface ServiceDefinition {
  /** argv: node's absolute path, main.js's absolute path, `daemon`, and `--config <path>` if one was given. */
  command: string[];
  /** Working directory of the daemon (the data dir). */
  dataDir: string;
  /** Where stdout and stderr are appended. */
  logFile: string;
  /** The WEFT_* variables the daemon gets. */
  variables: Record<string, string>;
  /** systemd only: the environment file the unit references. */
  environmentFile?: string;
}

/** A file `weft service install` writes: always mode 0600 (it may name secrets or reference them). */
export interface ServiceFile {
  role: 'unit' | 'environment' | 'plist';
  path: string;
  /** The exact contents written. */
  text: string;
  /** The contents with secret values masked, for output. */
  shown: string;
}

/** The mode of every file `weft service install` writes. */
export const SERVICE_FILE_MODE = 0o600;

// Where the keel command reads and writes. Commands never touch process.stdout/stderr directly,
// so the whole CLI runs in-process in tests (and inside other programs) with captured output.

export interface Writer {
  write(text: string): void;
  /** True when the writer is a terminal: live progress redraws lines in place only then. */
  readonly isTTY?: boolean;
  /** Terminal height, when known: live progress falls back to plain lines when it does not fit. */
  readonly rows?: number;
  /** Terminal width, when known: lines redrawn in place are cut to it, since a wrapped line would break the redraw. */
  readonly columns?: number;
}

export interface CliIo {
  stdout: Writer;
  stderr: Writer;
  /** Reads all of standard input (for `--input -`). */
  readStdin(): Promise<string>;
  /** Folder that relative paths are resolved against. */
  cwd: string;
}

export function processIo(): CliIo {
  return {
    stdout: {
      write: (text) => void process.stdout.write(text),
      get isTTY() {
        return process.stdout.isTTY === true;
      },
      get rows() {
        return process.stdout.rows;
      },
      get columns() {
        return process.stdout.columns;
      },
    },
    stderr: { write: (text) => void process.stderr.write(text), isTTY: process.stderr.isTTY === true },
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    cwd: process.cwd(),
  };
}

export interface CapturedIo extends CliIo {
  /** Everything written to stdout so far. */
  out(): string;
  /** Everything written to stderr so far. */
  err(): string;
}

/** An in-memory CliIo: for tests, and for programs that embed the CLI and want its output as text. */
export function memoryIo(options: { cwd?: string; stdin?: string; isTTY?: boolean; rows?: number; columns?: number } = {}): CapturedIo {
  let stdout = '';
  let stderr = '';
  return {
    stdout: { write: (text) => void (stdout += text), isTTY: options.isTTY ?? false, rows: options.rows, columns: options.columns },
    stderr: { write: (text) => void (stderr += text), isTTY: false },
    readStdin: async () => options.stdin ?? '',
    cwd: options.cwd ?? process.cwd(),
    out: () => stdout,
    err: () => stderr,
  };
}

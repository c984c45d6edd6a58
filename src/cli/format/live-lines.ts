// A block of lines, one per item, redrawn in place as items change: for progress on a terminal.
// Only used when the writer is a TTY and the block fits its height; otherwise the caller prints
// plain lines (a CI log or a pipe must not receive cursor movements).

import type { Writer } from '../io.js';

const clearLine = '\r\u001b[2K';
const up = (lines: number) => (lines > 0 ? `\u001b[${lines}A` : '');
const down = (lines: number) => (lines > 0 ? `\u001b[${lines}B` : '');

export class LiveLines {
  private readonly lines: string[];

  private constructor(private readonly writer: Writer, initial: readonly string[]) {
    this.lines = initial.map((line) => this.fit(line));
    writer.write(this.lines.map((line) => `${line}\n`).join(''));
  }

  /** Draws the block, or returns undefined when the writer cannot show it in place. */
  static open(writer: Writer, initial: readonly string[], reservedRows = 2): LiveLines | undefined {
    if (!writer.isTTY || writer.rows === undefined || initial.length + reservedRows > writer.rows) return undefined;
    return new LiveLines(writer, initial);
  }

  /** Rewrites line `index`; the cursor stays below the block. */
  update(index: number, text: string): void {
    const line = this.fit(text);
    if (this.lines[index] === line) return;
    this.lines[index] = line;
    const distance = this.lines.length - index;
    this.writer.write(`${up(distance)}${clearLine}${line}${down(distance)}\r`);
  }

  /** Cut to the terminal's width: a line that wrapped would take two rows and break the cursor arithmetic. */
  private fit(line: string): string {
    const width = this.writer.columns;
    return width !== undefined && width > 1 && line.length >= width ? `${line.slice(0, width - 2)}…` : line;
  }
}

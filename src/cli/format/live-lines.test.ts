// Lines redrawn in place: only on a terminal that fits them, with the cursor moved up to the
// changed line and back below the block, and lines cut to the terminal's width.

import { describe, expect, it } from 'vitest';
import type { Writer } from '../io.js';
import { LiveLines } from './live-lines.js';

function terminal(options: { isTTY?: boolean; rows?: number; columns?: number }): Writer & { text: string } {
  const writer = {
    text: '',
    write(chunk: string) {
      writer.text += chunk;
    },
    ...options,
  };
  return writer;
}

describe('LiveLines', () => {
  it('is not used off a terminal, or when the block does not fit its height', () => {
    expect(LiveLines.open(terminal({ isTTY: false, rows: 50 }), ['a', 'b'])).toBeUndefined();
    expect(LiveLines.open(terminal({ isTTY: true }), ['a', 'b'])).toBeUndefined();
    expect(LiveLines.open(terminal({ isTTY: true, rows: 3 }), ['a', 'b'])).toBeUndefined();
    expect(LiveLines.open(terminal({ isTTY: true, rows: 4 }), ['a', 'b'])).toBeDefined();
  });

  it('draws the block, then rewrites one line and returns below the block', () => {
    const writer = terminal({ isTTY: true, rows: 24 });
    const lines = LiveLines.open(writer, ['one', 'two', 'three'])!;
    expect(writer.text).toBe('one\ntwo\nthree\n');
    writer.text = '';
    lines.update(1, 'TWO');
    expect(writer.text).toBe('\u001b[2A\r\u001b[2KTWO\u001b[2B\r');
    writer.text = '';
    lines.update(1, 'TWO');
    expect(writer.text).toBe('');
  });

  it('cuts lines to the terminal width so none wraps', () => {
    const writer = terminal({ isTTY: true, rows: 24, columns: 10 });
    const lines = LiveLines.open(writer, ['0123456789abc'])!;
    expect(writer.text).toBe('01234567…\n');
    writer.text = '';
    lines.update(0, 'short');
    expect(writer.text).toBe('\u001b[1A\r\u001b[2Kshort\u001b[1B\r');
  });
});

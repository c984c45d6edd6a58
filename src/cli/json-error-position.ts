// Where JSON text stops being valid. JSON.parse in Node 20 names the position for some mistakes
// and not for others ("Unexpected token '}', ... is not valid JSON"), so the CLI finds it itself
// to tell a person the line and column to fix. Only called after JSON.parse has failed.

export interface TextPosition {
  /** 0-based offset into the text. */
  offset: number;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

class SyntaxStop {
  constructor(readonly offset: number) {}
}

/** The position of the first syntax error in `text`, or undefined when it is valid JSON. */
export function jsonErrorPosition(text: string): TextPosition | undefined {
  let index = 0;
  const stop = (at = index): never => {
    throw new SyntaxStop(Math.min(at, text.length));
  };
  const skipWhitespace = () => {
    while (index < text.length && ' \t\n\r'.includes(text[index]!)) index++;
  };
  const expect = (character: string) => {
    if (text[index] !== character) stop();
    index++;
  };
  const readString = () => {
    expect('"');
    while (index < text.length) {
      const character = text[index]!;
      if (character === '"') {
        index++;
        return;
      }
      if (character < ' ') stop();
      if (character === '\\') {
        const escape = text[index + 1];
        if (escape === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(index + 2, index + 6))) stop(index + 1);
          index += 6;
          continue;
        }
        if (escape === undefined || !'"\\/bfnrt'.includes(escape)) stop(index + 1);
        index += 2;
        continue;
      }
      index++;
    }
    stop();
  };
  const readLiteral = (word: string) => {
    for (const character of word) {
      if (text[index] !== character) stop();
      index++;
    }
  };
  const readNumber = () => {
    const pattern = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
    pattern.lastIndex = index;
    const match = pattern.exec(text);
    if (!match || match[0] === '-' || match[0] === '') stop();
    index += match![0].length;
  };
  const readList = (close: string, readItem: () => void) => {
    index++;
    skipWhitespace();
    if (text[index] === close) {
      index++;
      return;
    }
    for (;;) {
      skipWhitespace();
      readItem();
      skipWhitespace();
      if (text[index] === ',') {
        index++;
        continue;
      }
      expect(close);
      return;
    }
  };
  const readValue = (): void => {
    skipWhitespace();
    const character = text[index];
    if (character === '{') {
      return readList('}', () => {
        readString();
        skipWhitespace();
        expect(':');
        readValue();
      });
    }
    if (character === '[') return readList(']', readValue);
    if (character === '"') return readString();
    if (character === 't') return readLiteral('true');
    if (character === 'f') return readLiteral('false');
    if (character === 'n') return readLiteral('null');
    if (character === '-' || (character !== undefined && character >= '0' && character <= '9')) return readNumber();
    stop();
  };

  try {
    readValue();
    skipWhitespace();
    if (index < text.length) stop();
    return undefined;
  } catch (error) {
    if (!(error instanceof SyntaxStop)) throw error;
    return positionAt(text, error.offset);
  }
}

export function positionAt(text: string, offset: number): TextPosition {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return { offset, line, column };
}

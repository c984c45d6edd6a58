// A workflow's context in memory while a worker holds its lease. Changes of the step in flight
// apply at once (so tools, transitions and deciders read their own writes) and are kept in an
// undo log: committed with the step's journal entries, or undone when the step rolls back to its
// checkpoint. Appends cost O(item), never O(list), so a long workflow's step cost stays flat.

import type { ContextChange } from '../store/types.js';

type Undo = { key: string; had: boolean; value: unknown; bytes: number; popped?: boolean };

export class ContextState {
  private readonly values: Record<string, unknown>;
  private readonly bytesByKey = new Map<string, number>();
  private pending: ContextChange[] = [];
  private undo: Undo[] = [];
  private total = 0;

  constructor(committed: Record<string, unknown>) {
    this.values = committed;
    for (const [key, value] of Object.entries(committed)) {
      const bytes = byteSize(value);
      this.bytesByKey.set(key, bytes);
      this.total += bytes;
    }
  }

  /** Bytes of JSON the context holds, the step in flight included (lists counted item by item). */
  get bytes(): number {
    return this.total;
  }

  get<T = unknown>(key: string): T | undefined {
    return this.values[key] as T | undefined;
  }

  set(key: string, value: unknown): void {
    this.remember(key);
    this.pending.push({ op: 'set', key, value });
    // A list gets its own copy: later appends grow it in place, and must change neither the
    // pending 'set' (which would then store the appended items twice) nor the caller's array.
    this.values[key] = Array.isArray(value) ? [...value] : value;
    this.resize(key, byteSize(value));
  }

  append(key: string, value: unknown): void {
    const current = this.values[key];
    if (current !== undefined && !Array.isArray(current)) {
      throw new TypeError(`Context key '${key}' holds a value, not a list: append needs a list (or an unset key).`);
    }
    const list = (current as unknown[] | undefined) ?? [];
    this.undo.push({ key, had: current !== undefined, value: current, bytes: this.bytesByKey.get(key) ?? 0, popped: true });
    // JSON of a list: '[' + items joined by ',' + ']'; a new list starts as the two brackets.
    const listBytes = current === undefined ? 2 : (this.bytesByKey.get(key) ?? 0);
    const itemBytes = byteSize(value ?? null) + (list.length > 0 ? 1 : 0);
    this.pending.push({ op: 'append', key, index: list.length, value });
    list.push(value);
    this.values[key] = list;
    this.resize(key, listBytes + itemBytes);
  }

  delete(key: string): void {
    this.remember(key);
    this.pending.push({ op: 'delete', key });
    delete this.values[key];
    this.resize(key, 0);
  }

  /** The context as the step in flight sees it. Read-only by contract: write through set/append. */
  snapshot(): Readonly<Record<string, unknown>> {
    return this.values;
  }

  /** The pending changes, for a commit; call `accept` once the commit is durable. */
  changes(): ContextChange[] {
    return this.pending;
  }

  accept(): void {
    this.pending = [];
    this.undo = [];
  }

  /** Rolls the in-memory context back to the last commit (the checkpoint). */
  discard(): void {
    for (const entry of this.undo.reverse()) {
      if (entry.popped) {
        (this.values[entry.key] as unknown[]).pop();
        if (!entry.had) delete this.values[entry.key];
      } else if (entry.had) {
        this.values[entry.key] = entry.value;
      } else {
        delete this.values[entry.key];
      }
      this.resize(entry.key, entry.bytes);
    }
    this.pending = [];
    this.undo = [];
  }

  private remember(key: string): void {
    this.undo.push({ key, had: key in this.values, value: this.values[key], bytes: this.bytesByKey.get(key) ?? 0 });
  }

  private resize(key: string, bytes: number): void {
    this.total += bytes - (this.bytesByKey.get(key) ?? 0);
    if (bytes === 0 && !(key in this.values)) this.bytesByKey.delete(key);
    else this.bytesByKey.set(key, bytes);
  }
}

export function byteSize(value: unknown): number {
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '');
}

// ContextState: the in-memory context of a running workflow with its undo log. Writes apply at
// once, are listed as changes for the commit, and are undone exactly by discard(); the byte count
// always equals the JSON size of what the context holds.

import { describe, expect, it } from 'vitest';
import type { ContextChange } from '../store/types.js';
import { byteSize, ContextState } from './context-state.js';

/** What a fresh worker would count after loading the same values from the store. */
function reloadedBytes(state: ContextState): number {
  return new ContextState(structuredClone({ ...state.snapshot() })).bytes;
}

/** Applies committed changes the way the store does (per key, lists per item) and reads them back. */
function applyLikeStore(changes: ContextChange[], start: Record<string, unknown> = {}): Record<string, unknown> {
  const rows = new Map<string, Map<number, string>>();
  for (const [key, value] of Object.entries(start)) {
    rows.set(key, new Map(Array.isArray(value) ? value.map((item, index) => [index, JSON.stringify(item)]) : [[-1, JSON.stringify(value)]]));
  }
  for (const change of changes) {
    if (change.op === 'append') {
      if (!rows.has(change.key)) rows.set(change.key, new Map());
      rows.get(change.key)!.set(change.index, JSON.stringify(change.value ?? null));
      continue;
    }
    rows.delete(change.key);
    if (change.op === 'set') rows.set(change.key, new Map([[-1, JSON.stringify(change.value ?? null)]]));
  }
  const context: Record<string, unknown> = {};
  for (const [key, items] of rows) {
    for (const [item, value] of [...items].sort(([a], [b]) => a - b)) {
      if (item < 0) context[key] = JSON.parse(value);
      else ((context[key] ??= []) as unknown[]).push(JSON.parse(value));
    }
  }
  return context;
}

describe('ContextState', () => {
  it('counts the bytes of what it was loaded with', () => {
    const committed = { claim: { amount: 12.5 }, notes: ['a', 'bc'], name: 'Zoë' };
    const state = new ContextState(structuredClone(committed));
    expect(state.bytes).toBe(byteSize(committed.claim) + byteSize(committed.notes) + byteSize(committed.name));
    expect(byteSize('Zoë')).toBe(6);
    expect(byteSize(undefined)).toBe(0);
  });

  it('applies set, append and delete at once and lists them as changes', () => {
    const state = new ContextState({ kept: 1 });
    state.set('total', 10);
    state.append('notes', 'first');
    state.append('notes', { by: 'bob' });
    state.delete('kept');
    expect(state.get('total')).toBe(10);
    expect(state.snapshot()).toEqual({ total: 10, notes: ['first', { by: 'bob' }] });
    expect(state.changes()).toEqual([
      { op: 'set', key: 'total', value: 10 },
      { op: 'append', key: 'notes', index: 0, value: 'first' },
      { op: 'append', key: 'notes', index: 1, value: { by: 'bob' } },
      { op: 'delete', key: 'kept' },
    ]);
  });

  it('keeps its byte count equal to the JSON size of its values through every kind of write', () => {
    const state = new ContextState({ list: ['x'], value: 'abc' });
    const steps: [string, () => void][] = [
      ['set a new key', () => state.set('amount', 123.45)],
      ['overwrite a key', () => state.set('value', 'a longer value')],
      ['append to a loaded list', () => state.append('list', 'yy')],
      ['append to a new list', () => state.append('fresh', { id: 1 })],
      ['append again', () => state.append('fresh', 'second')],
      ['set an empty list', () => state.set('empty', [])],
      ['append to the empty list', () => state.append('empty', 7)],
      ['delete a key', () => state.delete('amount')],
      ['delete a list', () => state.delete('list')],
    ];
    for (const [what, write] of steps) {
      write();
      expect({ what, bytes: state.bytes }).toEqual({ what, bytes: reloadedBytes(state) });
    }
    state.accept();
    expect(state.bytes).toBe(reloadedBytes(state));
  });

  it('discard undoes every write of the step in flight, bytes included', () => {
    const committed = { list: ['x'], value: 'abc', gone: true };
    const state = new ContextState(structuredClone(committed));
    const bytesBefore = state.bytes;
    state.set('value', 'changed');
    state.set('value', 'changed twice');
    state.append('list', 'y');
    state.append('newList', 1);
    state.set('newKey', { deep: [1, 2, 3] });
    state.delete('gone');
    state.delete('newKey');
    state.discard();
    expect(state.snapshot()).toEqual(committed);
    expect(state.bytes).toBe(bytesBefore);
    expect(state.changes()).toEqual([]);
  });

  it('discard after accept keeps what was accepted and undoes only what came after', () => {
    const state = new ContextState({});
    state.append('notes', 'committed');
    state.set('n', 1);
    state.accept();
    state.append('notes', 'in flight');
    state.set('n', 2);
    state.delete('notes');
    state.discard();
    expect(state.snapshot()).toEqual({ notes: ['committed'], n: 1 });
    expect(state.bytes).toBe(reloadedBytes(state));
  });

  it('an empty list set and appended to in one step reloads as written', () => {
    const state = new ContextState({});
    state.set('items', []);
    state.append('items', 'a');
    state.append('items', 'b');
    expect(applyLikeStore(state.changes())).toEqual({ items: ['a', 'b'] });
  });

  it('does not change a list the caller passed to set when appending to it later', () => {
    const mine = ['a'];
    const state = new ContextState({});
    state.set('items', mine);
    state.append('items', 'b');
    expect(mine).toEqual(['a']);
    expect(state.get('items')).toEqual(['a', 'b']);
    expect(applyLikeStore(state.changes())).toEqual({ items: ['a', 'b'] });
  });

  it('refuses to append to a key that holds a plain value, naming the key', () => {
    const state = new ContextState({ total: 3 });
    expect(() => state.append('total', 4)).toThrow(/Context key 'total' holds a value, not a list/);
    expect(state.snapshot()).toEqual({ total: 3 });
    expect(state.changes()).toEqual([]);
  });
});

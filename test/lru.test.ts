import { describe, expect, test } from 'vitest';
import { Lru } from '../src-main/engine/lru.ts';

describe('the least-recently-used map (the prefix and lens-session caches)', () => {
  test('past its capacity it evicts the least recently used entry, and a get makes an entry recent again', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>(2, (value, key) => evicted.push(`${key}=${value}`));
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // now b is the least recent
    lru.set('c', 3);
    expect(evicted).toEqual(['b=2']);
    expect([lru.get('b'), lru.get('a'), lru.get('c')]).toEqual([undefined, 1, 3]);
    expect(lru.size).toBe(2);
  });

  test('setting a kept key again replaces it without evicting another; peek and delete leave the order and evict nothing', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>(2, (_, key) => evicted.push(key));
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('a', 10); // b is now the least recent
    expect(evicted).toEqual([]);
    expect(lru.peek('b')).toBe(2); // does not make b recent
    lru.set('c', 3);
    expect(evicted).toEqual(['b']);
    expect(lru.delete('a')).toBe(true);
    expect(evicted).toEqual(['b']);
    expect(lru.size).toBe(1);
  });
});

/**
 * A small least-recently-used map: `get` and `set` make an entry the most recent, and past the
 * capacity the least recent goes, handed to `evict` (to release what it holds). A Map's insertion
 * order is the recency order: an entry used again is deleted and inserted anew.
 */
export class Lru<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(
    private readonly capacity: number,
    private readonly evict: (value: V, key: K) => void = () => {},
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The value, now the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    if (!this.entries.has(key)) return undefined;
    const value = this.entries.get(key)!;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  /** Stores the value as the most recently used, evicting the least recent ones past the capacity. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    while (this.entries.size >= this.capacity) {
      const [oldest, old] = this.entries.entries().next().value!;
      this.entries.delete(oldest);
      this.evict(old, oldest);
    }
    this.entries.set(key, value);
  }

  /** Removes the entry without evicting it (the caller lets go of it itself). */
  delete(key: K): boolean {
    return this.entries.delete(key);
  }

  /** The value without making it more recent. */
  peek(key: K): V | undefined {
    return this.entries.get(key);
  }
}

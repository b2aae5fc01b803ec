/**
 * Per-connection question-id allocator. Freed ids are reused most-recently-freed first (LIFO),
 * as other implementations of the protocol do, so peers must never assume ids grow. An id is freed only when its question is completely done
 * (Return received and Finish sent); freeing an id that is not in use is ignored.
 */
export class QuestionIdAllocator {
  #next = 0;
  readonly #free: number[] = [];
  readonly #inUse = new Set<number>();

  allocate(): number {
    const id = this.#free.pop() ?? this.#next++;
    if (id > 0xffffffff) throw new RangeError('question ids exhausted');
    this.#inUse.add(id);
    return id;
  }

  release(id: number): void {
    if (this.#inUse.delete(id)) this.#free.push(id);
  }

  /** Number of ids currently allocated. */
  get inUse(): number {
    return this.#inUse.size;
  }
}

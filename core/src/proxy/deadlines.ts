/**
 * Timeouts that many exchanges share, without a timer each: one list per duration, its entries in the order they
 * were (re)started, so the first one is always the next to expire, and one unreferenced Node timer per list that
 * is re-armed only when it fires. Starting, refreshing and cancelling an entry are list operations; an exchange
 * starts its idle timeout once and refreshes it per chunk, so this is what a request pays instead of a timer.
 *
 * An entry never expires early; it may expire up to a millisecond or so late, like a timer. The timers are
 * unreferenced: a waiting exchange always has a socket that keeps the process running.
 */
export class Deadline {
  /** When it expires (`performance.now()` time); meaningful while in a list. */
  at = 0;
  prev: Deadline | undefined;
  next: Deadline | undefined;
  list: DeadlineList | undefined;

  constructor(readonly onExpire: () => void) {}

  /** Whether it is running. */
  get pending(): boolean {
    return this.list !== undefined;
  }

  /** (Re)starts it: it expires `ms` from now unless refreshed or cancelled first. */
  start(ms: number): void {
    if (this.list) this.list.remove(this);
    listFor(ms).append(this);
  }

  /** Restarts a running one with its own duration; does nothing to one that is not running. */
  refresh(): void {
    const list = this.list;
    if (!list) return;
    list.remove(this);
    list.append(this);
  }

  cancel(): void {
    this.list?.remove(this);
  }
}

class DeadlineList {
  #head: Deadline | undefined;
  #tail: Deadline | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The delay `#timer` was made with (what its `refresh()` waits). */
  #timerDelay = 0;
  /** Whether the timer will fire (it is re-armed only from its own callback, or by the append to an empty list). */
  #armed = false;

  constructor(readonly ms: number) {}

  append(d: Deadline): void {
    d.at = performance.now() + this.ms;
    d.list = this;
    d.prev = this.#tail;
    d.next = undefined;
    if (this.#tail) this.#tail.next = d;
    else this.#head = d;
    this.#tail = d;
    // A list that had entries has its timer armed for an earlier entry, which fires no later than this one's time.
    if (!this.#armed) this.#arm(this.ms);
  }

  remove(d: Deadline): void {
    if (d.prev) d.prev.next = d.next;
    else this.#head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.#tail = d.prev;
    d.prev = d.next = d.list = undefined;
  }

  #arm(delay: number): void {
    this.#armed = true;
    if (this.#timer && delay === this.#timerDelay) this.#timer.refresh();
    else {
      this.#timer = setTimeout(() => this.#fire(), delay);
      this.#timer.unref();
      this.#timerDelay = delay;
    }
  }

  #fire(): void {
    // Entries started by the callbacks below must not arm the timer for their own (later) time.
    this.#armed = true;
    const now = performance.now();
    let d = this.#head;
    while (d && d.at <= now) {
      this.remove(d);
      try {
        d.onExpire();
      } catch (err) {
        // As from a timer of its own: the error is uncaught, and the other entries still expire.
        process.nextTick(() => {
          throw err;
        });
      }
      d = this.#head;
    }
    this.#armed = false;
    if (d) this.#arm(Math.max(1, Math.ceil(d.at - now)));
    // An empty list goes once its timer has fired: durations a plugin picks per exchange must not pile up lists.
    else if (lists.get(this.ms) === this) lists.delete(this.ms);
  }
}

const lists = new Map<number, DeadlineList>();

/** Durations that have a list (with entries, or emptied and waiting for its timer). For tests and diagnostics. */
export function deadlineListCount(): number {
  return lists.size;
}

function listFor(ms: number): DeadlineList {
  let list = lists.get(ms);
  if (!list) lists.set(ms, (list = new DeadlineList(ms)));
  return list;
}

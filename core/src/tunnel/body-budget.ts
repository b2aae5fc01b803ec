import type { H2ServerSession } from './h2/session.js';
import type { H2Stream } from './h2/stream.js';

/**
 * Bounds the request-body bytes the edge can make the connector hold before anything reads them.
 *
 * The HTTP/2 session returns a stream's flow-control window only as its body is read, but the connection's
 * window as soon as bytes arrive. So every unread stream can hold up to SETTINGS_INITIAL_WINDOW_SIZE, and a connection
 * streams × that (400 queued 1.5 MiB uploads held ~1 MiB each). Nothing in HTTP/2 lets one stream's window
 * shrink, but lowering INITIAL_WINDOW_SIZE lowers the window of every open stream by the difference
 * (RFC 9113 §6.9.2), which the edge applies as soon as it reads the SETTINGS.
 *
 * So each connection announces the largest window that keeps `held + unread streams × window` within half
 * of both its own budget and the process-wide one (halving from the configured window down to a floor), and
 * raises it again as bodies are read or streams end. A stream whose body is being read (flowing) only counts
 * the bytes it holds. Fitting windows to half the budget keeps stalled bodies from taking all of it: the
 * other half admits further streams at the floor window. When even that does not fit, new body-carrying
 * streams are refused (`admits`).
 * Bytes the edge sent before it read the lowered SETTINGS (at most about the 1 MiB connection window) come
 * on top.
 */

export interface BodyBudgetLimits {
  /** Budget for one edge connection (`tunnel.requestBodyBufferBytes`). */
  readonly connectionBytes: number;
  /** Budget for every edge connection of the process together (`tunnel.requestBodyBufferTotalBytes`). */
  readonly totalBytes: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE announced while within budget (`tunnel.streamWindowBytes`). */
  readonly streamWindow: number;
  /** The smallest window announced under pressure (default {@link MIN_STREAM_WINDOW}). */
  readonly minStreamWindow?: number;
}

/** Smallest stream window announced under pressure: uploads keep moving, 16 KiB per round trip. */
const MIN_STREAM_WINDOW = 16_384;
/** How often windows are re-fitted while any body-carrying stream is open. */
const REFIT_INTERVAL_MS = 100;

interface Usage {
  /** Body bytes received and not yet read. */
  held: number;
  /** Streams whose body nobody is reading: each may still receive a whole window. */
  unread: number;
}

/** The window that keeps `held + unread × window` within half the budget, halved from `max` down to `min`. */
function fit(budget: number, usage: Usage, max: number, min: number): number {
  if (usage.unread === 0) return max;
  const room = (budget / 2 - usage.held) / usage.unread;
  let window = max;
  while (window > room && window > min) window = Math.max(min, Math.floor(window / 2));
  return window;
}

/** One per process: every edge connection's ledger, and the refit timer. */
export class BodyBudget {
  readonly limits: Required<BodyBudgetLimits>;
  readonly #ledgers = new Set<BodyLedger>();
  #total: Usage = { held: 0, unread: 0 };
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: BodyBudgetLimits) {
    const min = Math.min(limits.minStreamWindow ?? MIN_STREAM_WINDOW, limits.streamWindow);
    this.limits = { ...limits, minStreamWindow: min };
  }

  /** Starts accounting for one edge connection's session. */
  open(session: H2ServerSession): BodyLedger {
    const ledger = new BodyLedger(this, session);
    this.#ledgers.add(ledger);
    session.once('close', () => {
      this.#ledgers.delete(ledger);
      this.schedule();
    });
    return ledger;
  }

  /** Bytes held unread over every connection, as last measured. */
  get held(): number {
    return this.#total.held;
  }

  /** Whether one more body-carrying stream on `ledger` fits both budgets at the smallest window. */
  admits(ledger: BodyLedger): boolean {
    const min = this.limits.minStreamWindow;
    const fits = (budget: number, u: Usage) => u.held + (u.unread + 1) * min <= budget;
    return fits(this.limits.connectionBytes, ledger.usage) && fits(this.limits.totalBytes, this.#total);
  }

  /** Counts a new unread body at once, so admissions in the same burst see it before the next re-fit. */
  noteUnread(): void {
    this.#total = { held: this.#total.held, unread: this.#total.unread + 1 };
  }

  /** Re-fits every connection's window once the current burst of events has been handled. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.refit();
    });
  }

  /** Measures every connection and announces each the window that fits both budgets. */
  refit(): void {
    const { connectionBytes, totalBytes, streamWindow, minStreamWindow } = this.limits;
    const total: Usage = { held: 0, unread: 0 };
    let streams = 0;
    for (const ledger of this.#ledgers) {
      const u = ledger.measure();
      total.held += u.held;
      total.unread += u.unread;
      streams += ledger.streams;
    }
    this.#total = total;
    const shared = fit(totalBytes, total, streamWindow, minStreamWindow);
    for (const ledger of this.#ledgers) ledger.announce(Math.min(shared, fit(connectionBytes, ledger.usage, streamWindow, minStreamWindow)));
    if (streams > 0 && !this.#timer) {
      this.#timer = setInterval(() => this.refit(), REFIT_INTERVAL_MS).unref();
    } else if (streams === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}

/** One edge connection's body-carrying streams and the window it announces. */
export class BodyLedger {
  readonly #budget: BodyBudget;
  readonly #session: H2ServerSession;
  readonly #streams = new Set<H2Stream>();
  #usage: Usage = { held: 0, unread: 0 };
  #announced: number;
  #wanted: number;

  constructor(budget: BodyBudget, session: H2ServerSession) {
    this.#budget = budget;
    this.#session = session;
    this.#announced = this.#wanted = budget.limits.streamWindow;
    session.on('localSettings', () => {
      if (this.#wanted !== this.#announced) this.announce(this.#wanted);
    });
  }

  get usage(): Usage {
    return this.#usage;
  }

  get streams(): number {
    return this.#streams.size;
  }

  /** The SETTINGS_INITIAL_WINDOW_SIZE last announced on this connection. */
  get window(): number {
    return this.#announced;
  }

  /** Accounts for a stream whose body is still to come, until it closes. */
  track(stream: H2Stream): void {
    this.#streams.add(stream);
    // Counted as unread at once, so a burst of new streams lowers the window before their bytes arrive.
    this.#usage = { held: this.#usage.held, unread: this.#usage.unread + 1 };
    this.#budget.noteUnread();
    stream.once('close', () => {
      this.#streams.delete(stream);
      this.#budget.schedule();
    });
    this.#budget.schedule();
  }

  measure(): Usage {
    let held = 0;
    let unread = 0;
    for (const stream of this.#streams) {
      held += stream.readableLength;
      if (stream.readableFlowing !== true) unread++;
    }
    this.#usage = { held, unread };
    return this.#usage;
  }

  /** Announces `window` as the connection's INITIAL_WINDOW_SIZE, once any earlier SETTINGS was acknowledged. */
  announce(window: number): void {
    this.#wanted = window;
    if (window === this.#announced) return;
    const session = this.#session;
    if (session.closed || session.destroyed || session.pendingSettingsAck) return;
    try {
      session.settings({ initialWindowSize: window });
      this.#announced = window;
    } catch {
      // The session is going away; nothing left to bound.
    }
  }
}

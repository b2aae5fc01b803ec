import type { Logger } from 'pino';
import type { Runnable } from '../plugin-api/lifecycle.js';
import { NewProblemsLog, type LocalEventLog } from './event-log.js';
import type { FolderSource } from './folder-source.js';
import { folderGatewayProblems, gatewayObjectCount } from './gateway-problems.js';

export interface FolderGatewayReportOptions {
  readonly source: FolderSource;
  readonly events: LocalEventLog;
  readonly logger: Logger;
  /** Setting `gateway.enabled`: false, the folder's Gateway API objects are not read, and the log says so once. */
  readonly enabled: boolean;
}

/**
 * Folder mode's stand-in for Gateway API status: after every read of the folder that changed it, the problems a
 * cluster's status would show ({@link folderGatewayProblems}) are logged through the event log, each once while it
 * lasts (and again if it comes back after a fix), naming the object, the field and the manifest file.
 */
export class FolderGatewayReport implements Runnable {
  readonly needsLeader = false;
  readonly #o: FolderGatewayReportOptions;

  constructor(options: FolderGatewayReportOptions) {
    this.#o = options;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { source, logger } = this.#o;
    const problems = new NewProblemsLog(this.#o.events);
    let toldDisabled = false;
    const check = () => {
      const snapshot = source.snapshot();
      if (this.#o.enabled) {
        problems.report(folderGatewayProblems(snapshot));
        return;
      }
      const count = gatewayObjectCount(snapshot);
      if (count > 0 && !toldDisabled) {
        toldDisabled = true;
        logger.warn({ folder: source.folder, objects: count }, 'the folder holds Gateway API objects, but gateway.enabled is false: they are not served');
      }
    };
    const stop = source.onLoad(check);
    try {
      await source.waitForSync(signal);
      if (!signal.aborted) check();
      if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    } finally {
      stop();
    }
  }
}

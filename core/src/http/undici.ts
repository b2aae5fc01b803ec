import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * The parts of undici Warren uses: its dispatchers (Pool, Agent), their request API and the socket connector.
 *
 * undici's package entry loads every feature it has — fetch, WebSocket, EventSource, caches, mocks, about 110
 * modules — which costs every Warren process about 50 ms of CPU and 12 MiB of memory at start-up for code it
 * never runs. These are the modules that entry loads for the exports below, loaded the same way (the package has
 * no exports map, so its files are public paths). Import undici's values from here, never from 'undici'
 * (an architecture test checks); its types come from 'undici' as usual.
 */
const require = createRequire(import.meta.url);

const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
// The package entry gives every dispatcher its request/stream/pipeline/upgrade/connect methods this way.
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;

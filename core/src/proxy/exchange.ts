/** The exchange model lives in `model/exchange.ts` (a leaf that `plugin-api` and core share); re-exported here for core's modules. */
export type * from '../model/exchange.js';

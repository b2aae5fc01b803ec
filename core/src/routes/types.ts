/** The routing model lives in `model/routes.ts` (a leaf that `plugin-api` and core share); re-exported here for core's modules. */
export type * from '../model/routes.js';

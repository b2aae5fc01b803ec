/**
 * The benchmark origin (origin.ts) in its own process. Prints `{"listening": "http://127.0.0.1:<port>"}` once
 * ready; exits on SIGTERM.
 */
import { startBenchOrigin } from './origin.js';

const origin = await startBenchOrigin();
process.stdout.write(`${JSON.stringify({ listening: origin.url })}\n`);
process.on('SIGTERM', () => void origin.close().then(() => process.exit(0)));

import { importRelay } from '../definitions/import-relay.js';
import { relayImports, type RelayDeps } from '../imports/orchestration.js';
import { defineHandler } from '../types.js';

export default defineHandler(importRelay, {
  handler: async (_p, ctx) => relayImports({ db: ctx.db, env: ctx.env, enqueue: ctx.enqueue as RelayDeps['enqueue'] }),
});

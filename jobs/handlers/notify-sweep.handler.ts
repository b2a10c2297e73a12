import { notifySweep } from '../definitions/notify-sweep.js';
import { runNotificationSweep } from '../notifications/programme.js';
import { defineHandler } from '../types.js';

export default defineHandler(notifySweep, {
  handler: async (_p, ctx) => runNotificationSweep(ctx, new Date()),
});

import { UnrecoverableError } from 'bullmq';
import { findUserById } from '../../db/repositories/users.js';
import { createInCapa } from '../capa-create.js';
import { createCapaUser } from '../definitions/create-capa-user.js';
import { generateLink } from '../definitions/generate-link.js';
import { defineHandler } from '../types.js';

export default defineHandler(createCapaUser, {
  handler: async ({ userId, requestedBy, sendLink }, ctx) => {
    const user = await findUserById(ctx.db, userId);
    if (!user) throw new UnrecoverableError(`user ${userId} not found`);
    const capaUserId = user.capaUserId ?? (await createInCapa(ctx, user)).capaUserId;
    if (sendLink) {
      await ctx.enqueue.add(generateLink, { userId, ...sendLink, requestedBy: requestedBy ?? null });
    }
    return { capaUserId };
  },
});

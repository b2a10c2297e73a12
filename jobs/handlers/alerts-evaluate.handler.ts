import { evaluateAlerts } from '../alerts/engine.js';
import { alertsEvaluate } from '../definitions/alerts-evaluate.js';
import { Queues } from '../queues.js';
import { defineHandler } from '../types.js';

export default defineHandler(alertsEvaluate, {
  handler: async (_p, ctx) => {
    // The rules read queue figures and Capa call counts from Redis through the worker's queues.
    if (!(ctx.enqueue instanceof Queues)) throw new Error('alert rules need the worker queues');
    const outcomes = await evaluateAlerts({ db: ctx.db, queues: ctx.enqueue, env: ctx.env, logger: ctx.logger }, { evaluator: 'worker' });
    return Object.fromEntries(outcomes.map((o) => [o.rule, o.error ? `error: ${o.error}` : `${o.did}${o.state ? ` (${o.state})` : ''}`]));
  },
});

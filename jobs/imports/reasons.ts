import { storeMessage, storedMessage, type StoredMessage, type StoredValues } from '../../lib/stored-message.js';

/**
 * Why a row is where it is, as the page words it: `imports:row_reasons.<key>` with the values it
 * quotes. Rows store their reasons this way (a list: a row may have several problems), so the
 * dry run and the results read in the reader's language, not the uploader's.
 */
export const rowProblem = (key: string, values?: StoredValues): StoredMessage => storedMessage(`imports:row_reasons.${key}`, values);

/** One reason, as the text the row stores. */
export const rowReason = (key: string, values?: StoredValues): string => storeMessage([rowProblem(key, values)]);

import type { RequestHandler } from 'express';

/**
 * The header through which server/web.ts hands the client's address to the Remix app (audit log,
 * sessions). Its value is express's `req.ip`: X-Forwarded-For is believed only as far as it was
 * added by a trusted (loopback) proxy, so a client cannot write an address of its choosing into
 * the audit log. Any copy of this header sent by the client is overwritten.
 */
export const CLIENT_ADDRESS_HEADER = 'x-kyc-desk-client-address';

export function stampClientAddress(): RequestHandler {
  return (req, _res, next) => {
    req.headers[CLIENT_ADDRESS_HEADER] = req.ip ?? '';
    next();
  };
}

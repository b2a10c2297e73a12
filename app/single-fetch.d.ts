// Types for Remix's single-fetch (v3_singleFetch): loaders return plain values, `data()` sets status.
import '@remix-run/server-runtime';

declare module '@remix-run/server-runtime' {
  interface Future {
    v3_singleFetch: true;
  }
}

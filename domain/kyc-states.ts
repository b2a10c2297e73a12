/** The KYC states a customer moves through (reference §3.3); the last three are outcomes. */
export const KYC_STATES = ['NOT_STARTED', 'LINK_ISSUED', 'IN_PROGRESS', 'VERIFIED', 'REJECTED', 'REVIEW_NEEDED'] as const;
export type KycState = (typeof KYC_STATES)[number];
export const FINAL_STATES: readonly KycState[] = ['VERIFIED', 'REJECTED', 'REVIEW_NEEDED'];

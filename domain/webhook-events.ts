export const KYC_EVENT_NAMES = ['CREATED_KYC', 'VERIFIED_USER', 'REJECTED_KYC', 'REVIEW_NEEDED_KYC'] as const;
export type KycEventName = (typeof KYC_EVENT_NAMES)[number];

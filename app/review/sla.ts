// The SLA clock is a product rule (domain/), shared with the alert on breached cases (jobs/alerts/).
export * from '../../domain/review-sla.js';

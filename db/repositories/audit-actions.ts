/**
 * Every action name the audit log may carry, in one list: writers import the constant (a typo is
 * a type error), and the /audit page offers exactly these in its action filter. Add new names
 * here, in their group; never rename one (old rows keep the old name).
 */
export const AUDIT_ACTIONS = {
  // sign-in and access
  authLogin: 'auth.login',
  authLogout: 'auth.logout',
  accessDenied: 'access.denied',
  csrfRefused: 'csrf.refused',
  requestTooLarge: 'request.too_large',
  authSso: 'auth.sso',
  authSsoRecheck: 'auth.sso_recheck',
  authMfa: 'auth.mfa',
  authMfaEnrol: 'auth.mfa_enrol',
  authMfaRemove: 'auth.mfa_remove',
  authRecoveryCodes: 'auth.recovery_codes',
  authSignOutEverywhere: 'auth.sign_out_everywhere',
  // operators and roles
  operatorSetupFirstAdmin: 'operator.setup_first_admin',
  operatorCreate: 'operator.create',
  operatorRoleChange: 'operator.role_change',
  operatorDisable: 'operator.disable',
  operatorEnable: 'operator.enable',
  operatorPasswordReset: 'operator.password_reset',
  operatorFactorsReset: 'operator.factors_reset',
  operatorSsoCreate: 'operator.sso_create',
  operatorSsoRole: 'operator.sso_role',
  operatorSignOut: 'operator.sign_out',
  operatorPreferences: 'operator.preferences',
  // the operators page (/admin/operators) writes these names
  operatorAdd: 'operator.add',
  operatorRole: 'operator.role',
  operatorResetPassword: 'operator.reset_password',
  // customers
  userCreate: 'user.create',
  userCapaCreate: 'user.capa_create',
  linkGenerate: 'link.generate',
  linkResend: 'link.resend',
  detailsFetch: 'details.fetch',
  // imports, notifications, webhooks
  importUpload: 'import.upload',
  importRun: 'import.run',
  notificationResend: 'notification.resend',
  notificationProgrammeStop: 'notification.programme.stop',
  webhookReprocess: 'webhook.reprocess',
  jobRetry: 'job.retry',
  // operations: refresh, queues, Capa's delivery log, webhook settings
  refreshAllStale: 'refresh.all_stale',
  refreshSelected: 'refresh.selected',
  queuesRetry: 'queues.retry',
  queuesRetryAll: 'queues.retry-all',
  queuesBoard: 'queues.board',
  capaDeliveryRetry: 'capa.delivery.retry',
  settingsCapaWebhook: 'settings.capa-webhook',
  // manual-review cases
  caseClaim: 'case.claim',
  caseAssign: 'case.assign',
  caseUnassign: 'case.unassign',
  caseNote: 'case.note',
  caseTaskAdd: 'case.task_add',
  caseTaskDone: 'case.task_done',
  caseStatus: 'case.status',
  caseResolve: 'case.resolve',
  // alerts
  alertAcknowledge: 'alert.acknowledge',
  alertSilence: 'alert.silence',
  alertSilenceEnd: 'alert.silence_end',
  alertRuleChange: 'alert.rule_change',
  alertRecipientsChange: 'alert.recipients_change',
  // evidence and data protection
  evidenceListExport: 'evidence.list_export',
  evidenceDossier: 'evidence.dossier',
  evidenceDocument: 'evidence.document',
  evidenceErasure: 'evidence.erasure',
  evidenceLegalHold: 'evidence.legal_hold',
  evidenceRetention: 'evidence.retention',
  // the audit log itself
  auditExport: 'audit.export',
  auditVerify: 'audit.verify',
  auditAnchorCompare: 'audit.anchor_compare',
} as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[keyof typeof AUDIT_ACTIONS];

export const AUDIT_ACTION_LIST: readonly AuditAction[] = Object.values(AUDIT_ACTIONS);

export const isAuditAction = (s: string): s is AuditAction => (AUDIT_ACTION_LIST as readonly string[]).includes(s);

/** Groups for the filter menu (the part before the dot). */
export const AUDIT_ACTION_GROUPS: readonly string[] = [...new Set(AUDIT_ACTION_LIST.map((a) => a.split('.')[0]!))];

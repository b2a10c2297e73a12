import type { Migration } from 'kysely';
import * as init from './20261125_0001_init.js';
import * as refresh from './20261125_0003_refresh.js';
import * as notifications from './20261125_0004_notifications.js';
import * as reviewCases from './20261125_0005_review_cases.js';
import * as imports from './20261125_0007_imports.js';
import * as ops from './20261125_0006_ops.js';
import * as consoleIndexes from './20261126_0300_console_indexes.js';
import * as usersSearch from './20261126_0310_users_search.js';
import * as dropPrefixIndexes from './20261126_0400_drop_prefix_indexes.js';
import * as usersSearchPg from './20261126_0410_users_search_pg.js';
import * as auditRefuseReplace from './20261129_0201_audit_refuse_replace.js';
import * as auditAnchors from './20261129_0201_audit_anchors.js';
import * as operatorLocale from './20261129_0301_operator_locale.js';
import * as alerts from './20261129_0501_alerts.js';
import * as operatorIdentity from './20261129_0401_operator_identity.js';
import * as erasure from './20261129_0601_erasure.js';
import * as retentionRuns from './20261130_0101_retention_runs.js';
import * as userCounts from './20261130_0201_user_counts.js';

/**
 * The explicit list of migrations, in order. Explicit imports (not a folder scan) so the same
 * list works under tsx, vitest and any bundler. Add new files here, named by timestamp.
 */
export const migrations: Record<string, Migration> = {
  '20261125_0001_init': init,
  '20261125_0003_refresh': refresh,
  '20261125_0004_notifications': notifications,
  '20261125_0005_review_cases': reviewCases,
  '20261125_0007_imports': imports,
  '20261125_0006_ops': ops,
  '20261126_0300_console_indexes': consoleIndexes,
  '20261126_0310_users_search': usersSearch,
  '20261126_0400_drop_prefix_indexes': dropPrefixIndexes,
  '20261126_0410_users_search_pg': usersSearchPg,
  '20261129_0201_audit_refuse_replace': auditRefuseReplace,
  '20261129_0201_audit_anchors': auditAnchors,
  '20261129_0301_operator_locale': operatorLocale,
  '20261129_0501_alerts': alerts,
  '20261129_0401_operator_identity': operatorIdentity,
  '20261129_0601_erasure': erasure,
  '20261130_0101_retention_runs': retentionRuns,
  '20261130_0201_user_counts': userCounts,
};

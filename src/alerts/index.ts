/** Alerts: one per incident (a failed, partial or refused run, records given up, a missed schedule, an expiring token, a coverage or match-rate drop), to a JSON webhook or Slack. */
export { AlertCenter, type AlertCenterOptions } from './center.js';
export { checkSchedule, measureDrops, subjectOf, type Finding, type MeasureDrop, type ScheduleCheck } from './conditions.js';
export { DEFAULT_DELIVERY, deliver, describeDestination, sendTestAlerts, type DeliveryOptions, type DeliveryResult } from './deliver.js';
export { slackBody, webhookBody } from './message.js';
export { tokenStatusOf, workspaceTokenStatus } from './tokens.js';
export type { AlertCondition, AlertMessage, TokenStatus } from './types.js';

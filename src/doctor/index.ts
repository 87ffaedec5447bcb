/** `audience-sync doctor`: checks a setup end to end and says what to fix. */
export { runDoctor } from './run.js';
export {
  API_VERSION_EXPIRY,
  API_VERSION_WARN_DAYS,
  checkAdAccount,
  checkApiVersion,
  checkAudience,
  checkGivenUp,
  checkModel,
  checkPermissions,
  checkSchema,
  checkTos,
  doctorReport,
  type Check,
  type CheckStatus,
  type DoctorReport,
} from './checks.js';

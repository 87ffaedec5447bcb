import { createHmac } from 'node:crypto';

/**
 * Meta's appsecret_proof: lowercase hex HMAC-SHA256 of the access token keyed with the app secret.
 * With `time` (unix seconds) the HMAC covers `token|time`, the variant sent with `appsecret_time`.
 */
export function appSecretProof(token: string, secret: string, time?: number): string {
  const message = time === undefined ? token : `${token}|${time}`;
  return createHmac('sha256', secret).update(message, 'utf8').digest('hex');
}

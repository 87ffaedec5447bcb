import { hash } from 'node:crypto';

/** SHA-256 of the UTF-8 bytes of `text`, as 64 lowercase hex digits (Meta's hashing for match keys). */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

const HEX_64 = /^[0-9a-fA-F]{64}$/;
/** True when `text` (already trimmed) is a SHA-256 digest in hex, in either case. */
export function isSha256Hex(text: string): boolean {
  return text.length === 64 && HEX_64.test(text);
}

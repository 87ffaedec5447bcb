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

/**
 * A reusable byte buffer whose first `length` bytes can be hashed. crypto.hash takes no offset or length, so a
 * view per length is made once instead of one per value.
 */
export class HashScratch {
  readonly bytes: Uint8Array;
  private readonly views: Uint8Array[];
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.views = Array.from({ length: size + 1 }, (_, length) => new Uint8Array(this.bytes.buffer, 0, length));
  }

  /** SHA-256 of bytes[0, length) as 64 lowercase hex digits. */
  sha256Hex(length: number): string {
    return hash('sha256', this.views[length]!, 'hex');
  }
}

import { createHmac } from 'node:crypto';

/**
 * Opaque ownership proof for external state (DNS registry records, firewall rule refs): a truncated
 * HMAC-SHA256 keyed with the installation's owner key over `subject`. Another installation (another key)
 * gets a different value; the value reveals neither the key nor the tunnel id.
 */
export function ownershipDigest(ownerKey: string, subject: string, hexChars = 32): string {
  return createHmac('sha256', ownerKey).update(subject).digest('hex').slice(0, hexChars);
}

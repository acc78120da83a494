/**
 * What an admin token may do. Each scope includes the ones before it:
 *   read        campaign status, settlement, the audit log;
 *   operate     also pause and resume activities (the emergency stop an on-call operator needs);
 *   administer  also load campaigns and replace merchant lists (they change who gets vouchers).
 * A route that names no scope needs administer, so a route added without thought is not open
 * to every token.
 */
export const ADMIN_SCOPES = ["read", "operate", "administer"] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

export function isAdminScope(text: string): text is AdminScope {
  return (ADMIN_SCOPES as readonly string[]).includes(text);
}

export function grants(held: AdminScope, needed: AdminScope): boolean {
  return ADMIN_SCOPES.indexOf(held) >= ADMIN_SCOPES.indexOf(needed);
}

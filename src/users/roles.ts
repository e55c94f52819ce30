// Who may do what on the page (issue 6): the roles a user has and what each permits. Shared by the
// configuration (users provisioned in the file), the login and every route's guard.

/**
 * Roles (issue 6): admin does everything; crew and technician pair devices and run cases; viewer reads.
 * cardiologist: at the county center's reading station (center/), reads ECGs; on a gateway, a viewer.
 */
export const ROLES = ["admin", "crew", "technician", "viewer", "cardiologist"] as const;
export type Role = (typeof ROLES)[number];

/** What a route needs of the user. "read": any logged-in user. "reading": send an ECG's reading (the center's page). */
export type Permission = "read" | "devices" | "cases" | "admin" | "reading";

export const PERMISSIONS: Record<Role, readonly Permission[]> = {
  admin: ["read", "devices", "cases", "admin", "reading"],
  crew: ["read", "devices", "cases"],
  technician: ["read", "devices", "cases"],
  viewer: ["read"],
  cardiologist: ["read", "reading"],
};

export interface SessionUser {
  username: string;
  role: Role;
}

"""The permission catalogue (`feature:objective`) and the default roles every company starts with."""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "users:read": "View users",
    "users:create": "Create users",
    "users:update": "Edit users",
    "users:delete": "Deactivate users",
    "users:manage_roles": "Assign and remove user roles",
    "users:import_csv": "Import users from CSV",
    "users:bulk_actions": "Bulk user actions",
    "roles:read": "View roles",
    "roles:create": "Create roles",
    "roles:update": "Edit roles",
    "roles:delete": "Delete roles",
    "roles:manage_permissions": "Change role permissions",
    "permissions:read_all": "View the permission catalogue",
    "admin:access_panel": "Access the admin panel",
    "admin:view_analytics": "View dashboards and analytics",
    "admin:manage_company": "Manage the company",
    "admin:manage_system": "Operate the platform (all companies)",
    "company:manage_settings": "Manage company settings and values",
    "praise:send": "Send compliments",
    "praise:view_all": "View all compliments",
    "praise:moderate": "Moderate compliments",
    "coins:view_balance": "View own balance",
    "coins:transfer": "Transfer coins",
    "coins:manage_system": "Manage the coin economy",
    "store:view_catalog": "View the prize catalogue",
    "store:redeem_prizes": "Redeem prizes",
    "store:manage_catalog": "Manage the prize catalogue",
    "vouchers:send_to_users": "Send vouchers to users",
    "prizes:create": "Create prizes",
    "prizes:create_global": "Create prizes for every company",
    "prizes:read": "View prizes",
    "prizes:update": "Edit prizes",
    "prizes:delete": "Delete prizes",
    "prizes:manage_images": "Manage prize images",
    "redemptions:view_all": "View all redemptions",
    "redemptions:view_details": "View redemption details",
    "redemptions:update_status": "Update redemption status",
    "redemptions:cancel": "Cancel redemptions",
    "jobs:read_all": "View every background job of the company",
    "jobs:manage": "Retry and cancel background jobs",
    "jobs:operate_queues": "Delete, empty and requeue queued jobs in the operator console",
}

_EMPLOYEE = {
    "praise:send",
    "coins:view_balance",
    "store:view_catalog",
    "store:redeem_prizes",
    "prizes:read",
}
_TEAM_LEAD = _EMPLOYEE | {"praise:view_all", "users:read", "admin:access_panel", "admin:view_analytics"}
_HR_MANAGER = _TEAM_LEAD | {
    "users:create",
    "users:update",
    "users:delete",
    "users:manage_roles",
    "users:import_csv",
    "users:bulk_actions",
    "roles:read",
    "praise:moderate",
    "vouchers:send_to_users",
    "redemptions:view_all",
    "redemptions:view_details",
    "jobs:read_all",
}
# Platform permissions: they act on every company (or on the shared queues), so no company role has them.
PLATFORM_PERMISSIONS = frozenset({"admin:manage_system", "prizes:create_global", "jobs:operate_queues"})
_COMPANY_ADMIN = set(PERMISSIONS) - PLATFORM_PERMISSIONS

# name -> (description, permissions). Every company gets all five. Super Admin holds
# `admin:manage_system`, which acts across companies (platform operations), so nobody gets it by
# creating a company: only an operator hands it out (`flask create-company --super-admin`).
DEFAULT_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    "Super Admin": ("Every permission, including platform operations", frozenset(PERMISSIONS)),
    "Company Admin": ("Manages the company, its people, roles and settings", frozenset(_COMPANY_ADMIN)),
    "HR Manager": ("Manages people, imports and onboarding", frozenset(_HR_MANAGER)),
    "Team Lead": ("Leads a team and follows its engagement", frozenset(_TEAM_LEAD)),
    "Employee": ("Sends and receives compliments, redeems prizes", frozenset(_EMPLOYEE)),
}
EMPLOYEE_ROLE = "Employee"
CREATOR_ROLE = "Company Admin"  # what a company's first user gets
SUPER_ADMIN_ROLE = "Super Admin"

# The stable key of each default role (`roles.key`): code finds a default role by its key, so an
# admin may rename "Employee" to "Colaborador" and user creation still finds it. A role with a key
# is a default role and cannot be deleted.
ROLE_KEYS: dict[str, str] = {
    SUPER_ADMIN_ROLE: "super_admin",
    CREATOR_ROLE: "company_admin",
    "HR Manager": "hr_manager",
    "Team Lead": "team_lead",
    EMPLOYEE_ROLE: "employee",
}
EMPLOYEE_KEY = ROLE_KEYS[EMPLOYEE_ROLE]  # the role every new user gets


def category_of(permission_name: str) -> str:
    return permission_name.split(":", 1)[0]

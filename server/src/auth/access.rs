//! Who may do what, as pure rules: roles, whether an access token still speaks for its
//! person, and the last-admin rule.

use api::Role;

/// A person's access: their role, and whether they may sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub role: Role,
    pub active: bool,
}

impl Access {
    fn is_active_admin(self) -> bool {
        self.role == Role::Admin && self.active
    }
}

/// Admins may do whatever users may; users only their own role's routes.
pub fn has_role(role: Role, required: Role) -> bool {
    role == required || role == Role::Admin
}

/// True when changing one person's access from `before` to `after` would leave no active
/// admin, given how many active admins there are now (that person included).
pub fn removes_last_admin(before: Access, after: Access, active_admins: u64) -> bool {
    before.is_active_admin() && !after.is_active_admin() && active_admins <= 1
}

/// Whether an access token still speaks for its person: they are active, have the role
/// the token names, and the session it was issued to is still live (ended sessions — a
/// logout, a revocation, a password change or reset, a detected replay — end their access
/// tokens at once, whatever second they were issued in).
pub fn token_honoured(token_role: &str, session_live: bool, account: Access) -> bool {
    account.active && account.role.as_str() == token_role && session_live
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: Access = Access {
        role: Role::Admin,
        active: true,
    };
    const DISABLED_ADMIN: Access = Access {
        role: Role::Admin,
        active: false,
    };
    const USER: Access = Access {
        role: Role::User,
        active: true,
    };

    #[test]
    fn roles() {
        assert!(has_role(Role::Admin, Role::Admin));
        assert!(has_role(Role::Admin, Role::User));
        assert!(has_role(Role::User, Role::User));
        assert!(!has_role(Role::User, Role::Admin));
    }

    #[test]
    fn the_last_active_admin_stays_one() {
        assert!(removes_last_admin(ADMIN, USER, 1), "demoting the last");
        assert!(
            removes_last_admin(ADMIN, DISABLED_ADMIN, 1),
            "disabling the last"
        );
        assert!(!removes_last_admin(ADMIN, USER, 2), "another admin remains");
        assert!(!removes_last_admin(ADMIN, ADMIN, 1), "no change");
        assert!(
            !removes_last_admin(USER, DISABLED_ADMIN, 1),
            "not an admin before"
        );
        assert!(
            !removes_last_admin(DISABLED_ADMIN, USER, 1),
            "not active before"
        );
        assert!(!removes_last_admin(USER, ADMIN, 0), "promotion");
    }

    #[test]
    fn a_change_of_access_or_an_ended_session_ends_tokens() {
        assert!(token_honoured("admin", true, ADMIN));
        assert!(!token_honoured("admin", true, DISABLED_ADMIN), "disabled");
        assert!(!token_honoured("admin", true, USER), "demoted");
        assert!(
            !token_honoured("user", true, ADMIN),
            "promoted: a new token"
        );
        assert!(!token_honoured("admin", false, ADMIN), "session ended");
    }
}

//! Roles of API clients and what each may do. Deny by default: an identity that maps to no
//! role, or a role asking for an action it lacks, is refused.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// A client's role, from its certificate through the configured mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Calls: create, update, delete and read.
    Operator,
    /// Read calls and statistics (never keys).
    Auditor,
    /// `/metrics` only.
    Metrics,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Auditor, Role::Metrics];

    /// The name used in configuration and certificates.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Auditor => "auditor",
            Self::Metrics => "metrics",
        }
    }

    /// Whether this role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Self::Admin => true,
            Self::Operator => matches!(
                action,
                CreateCall | UpdateCall | DeleteCall | ReadCalls | Health
            ),
            Self::Auditor => matches!(action, ReadCalls | ReadStats | Health),
            Self::Metrics => matches!(action, Metrics | Health),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `POST /v1/calls`.
    CreateCall,
    /// `PATCH /v1/calls/{id}`.
    UpdateCall,
    /// `DELETE /v1/calls/{id}`.
    DeleteCall,
    /// `GET /v1/calls`, `GET /v1/calls/{id}`.
    ReadCalls,
    /// `GET /v1/stats`.
    ReadStats,
    /// `GET /metrics`.
    Metrics,
    /// `GET /healthz`.
    Health,
}

/// How a client identity compares with the names of a [`RoleMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Host names (common names, DNS names, IP addresses): without regard to ASCII case, as
    /// DNS compares them (RFC 4343) and as IPv6 addresses may be written.
    IgnoreAsciiCase,
    /// URIs and e-mail addresses, whose paths and local parts are case-sensitive: exactly.
    Exact,
}

/// The configured mapping from client identities (subject CN or SAN) to roles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleMap {
    map: BTreeMap<String, Role>,
}

impl RoleMap {
    /// A mapping from identity to role.
    pub fn new(map: BTreeMap<String, Role>) -> Self {
        Self { map }
    }

    /// The role of the first identity (in the order given) that is mapped, each compared as
    /// its [`Compare`] says.
    pub fn role<'a>(
        &self,
        identities: impl IntoIterator<Item = (&'a str, Compare)>,
    ) -> Option<Role> {
        identities.into_iter().find_map(|(id, compare)| {
            self.map.get(id).copied().or_else(|| match compare {
                Compare::Exact => None,
                Compare::IgnoreAsciiCase => self
                    .map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(id))
                    .map(|(_, r)| *r),
            })
        })
    }

    /// Whether no identity is mapped (every request will be denied).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The number of mapped identities.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions() {
        use Action::*;
        let all = [
            CreateCall, UpdateCall, DeleteCall, ReadCalls, ReadStats, Metrics, Health,
        ];
        let allowed = |r: Role| all.iter().filter(|a| r.allows(**a)).count();
        assert_eq!(allowed(Role::Admin), all.len());
        assert!(Role::Operator.allows(CreateCall) && !Role::Operator.allows(Metrics));
        assert!(!Role::Auditor.allows(CreateCall) && Role::Auditor.allows(ReadStats));
        assert!(Role::Metrics.allows(Metrics) && !Role::Metrics.allows(ReadCalls));
    }

    #[test]
    fn unmapped_identity_has_no_role() {
        use Compare::*;
        let map = RoleMap::new(
            [
                ("proxy".to_string(), Role::Operator),
                ("spiffe://pbx/edge".to_string(), Role::Admin),
            ]
            .into(),
        );
        assert_eq!(
            map.role([("other", IgnoreAsciiCase), ("PROXY", IgnoreAsciiCase)]),
            Some(Role::Operator)
        );
        assert_eq!(map.role([("other", IgnoreAsciiCase)]), None);
        // A URI or e-mail address differing in case is another identity.
        assert_eq!(map.role([("PROXY", Exact)]), None);
        assert_eq!(map.role([("spiffe://pbx/EDGE", Exact)]), None);
        assert_eq!(map.role([("spiffe://pbx/edge", Exact)]), Some(Role::Admin));
    }
}

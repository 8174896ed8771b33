//! Access control lists: CreateAcls, DescribeAcls and DeleteAcls (`kafka-acls`), asked of any
//! broker (KRaft brokers forward changes to the controller). They need an authorizer on the
//! cluster (`authorizer.class.name`); without one, every call fails with SECURITY_DISABLED.
//!
//! A binding says that a principal may (or may not) do an operation on the resources a
//! pattern matches, from a host; a filter matches bindings, each of its parts `Any` or left
//! out to match everything.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{item_answer, missing_answer, Admin};
use crate::error::{Error, Resource};

/// An enum of ACL codes, each variant with its code on the wire, and `Unknown` for a code
/// purekafka does not know (a newer broker's).
macro_rules! acl_codes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A code purekafka does not know, as the broker sent it.
            Unknown(i8),
        }

        impl $name {
            fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Unknown(code) => code,
                }
            }

            fn from_code(code: i8) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    code => $name::Unknown(code),
                }
            }
        }
    };
}

acl_codes! {
    /// The kind of resource an ACL is about (the Java client's `ResourceType`).
    AclResourceType {
        /// Any kind: only in a filter.
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster itself (its name is `kafka-cluster`).
        Cluster = 4,
        /// A producer's `transactional.id`.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user (for delegation tokens).
        User = 7,
    }
}

acl_codes! {
    /// How an ACL's resource name matches resources (the Java client's `PatternType`).
    AclPatternType {
        /// Any pattern: only in a filter.
        Any = 1,
        /// In a filter: every binding that would apply to the resource named, literal,
        /// prefixed or `*` alike.
        Match = 2,
        /// The resource of exactly that name; `*` is every resource.
        Literal = 3,
        /// Every resource whose name starts with it.
        Prefixed = 4,
    }
}

acl_codes! {
    /// What an ACL allows or denies (the Java client's `AclOperation`).
    AclOperation {
        /// Any operation: only in a filter.
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Broker-to-broker actions on the cluster.
        ClusterAction = 9,
        /// Describe configurations.
        DescribeConfigs = 10,
        /// Alter configurations.
        AlterConfigs = 11,
        /// Idempotent writes (the idempotent producer, on the cluster).
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
}

acl_codes! {
    /// Whether an ACL allows or denies (the Java client's `AclPermissionType`).
    AclPermission {
        /// Either: only in a filter.
        Any = 1,
        /// Denies; a deny wins over any allow.
        Deny = 2,
        /// Allows.
        Allow = 3,
    }
}

/// One ACL: `principal` may (`Allow`) or may not (`Deny`) do `operation` on the resources
/// `resource_name` matches as `pattern_type` says, from `host` (the Java client's
/// `AclBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: AclResourceType,
    /// The resource name, or prefix; `*` with `Literal` is every resource of the kind.
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: AclPatternType,
    /// Who: `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// From where: an IP address, or `*` for anywhere.
    pub host: String,
    /// What.
    pub operation: AclOperation,
    /// Allowed or denied.
    pub permission: AclPermission,
}

impl AclBinding {
    /// `principal` may (or may not, as `permission` says) do `operation` on the resource
    /// named `resource_name` exactly, from any host.
    ///
    /// ```
    /// use purekafka::{AclBinding, AclOperation, AclPermission, AclResourceType};
    /// let read = AclBinding::new(AclResourceType::Topic, "orders", "User:alice", AclOperation::Read, AclPermission::Allow);
    /// let everything_below = read.clone().prefixed();
    /// assert_eq!(everything_below.host, "*");
    /// ```
    pub fn new(
        resource_type: AclResourceType,
        resource_name: &str,
        principal: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: resource_name.to_owned(),
            pattern_type: AclPatternType::Literal,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation,
            permission,
        }
    }

    /// The same, for every resource whose name starts with `resource_name`.
    pub fn prefixed(mut self) -> AclBinding {
        self.pattern_type = AclPatternType::Prefixed;
        self
    }

    /// The same, only from `host`.
    pub fn from_host(mut self, host: &str) -> AclBinding {
        self.host = host.to_owned();
        self
    }

    /// A binding as DescribeAcls and DeleteAcls answers carry it: `(resource type, name,
    /// pattern type)` and `(principal, host, operation, permission)`.
    fn from_wire(
        (resource_type, name, pattern_type): (i8, &StrBytes, i8),
        (principal, host, operation, permission): (&StrBytes, &StrBytes, i8, i8),
    ) -> AclBinding {
        AclBinding {
            resource_type: AclResourceType::from_code(resource_type),
            resource_name: name.to_string(),
            pattern_type: AclPatternType::from_code(pattern_type),
            principal: principal.to_string(),
            host: host.to_string(),
            operation: AclOperation::from_code(operation),
            permission: AclPermission::from_code(permission),
        }
    }
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {} {:?} from {} on {:?} {:?} ({:?})",
            self.permission,
            self.principal,
            self.operation,
            self.host,
            self.resource_type,
            self.resource_name,
            self.pattern_type
        )
    }
}

/// Which bindings a [`Admin::describe_acls`] or [`Admin::delete_acls`] is about (the Java
/// client's `AclBindingFilter`): each part `Any` or `None` matches every binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AclFilter {
    /// The kind of resource, or `Any`.
    pub resource_type: AclResourceType,
    /// The resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// The pattern type, `Any`, or `Match` for every binding that applies to the name.
    pub pattern_type: AclPatternType,
    /// The principal, or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: AclOperation,
    /// The permission, or `Any`.
    pub permission: AclPermission,
}

impl AclFilter {
    /// Every binding.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: AclResourceType::Any,
            resource_name: None,
            pattern_type: AclPatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// Exactly `binding`.
    pub fn exactly(binding: &AclBinding) -> AclFilter {
        AclFilter {
            resource_type: binding.resource_type,
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: binding.pattern_type,
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: binding.operation,
            permission: binding.permission,
        }
    }

    /// The bindings on the resources `resource_name` names of kind `resource_type`, as
    /// `pattern_type` says (`Literal`, `Prefixed`, or `Match` for all that apply to it).
    pub fn on(
        resource_type: AclResourceType,
        resource_name: &str,
        pattern_type: AclPatternType,
    ) -> AclFilter {
        AclFilter {
            resource_type,
            resource_name: Some(resource_name.to_owned()),
            pattern_type,
            ..AclFilter::any()
        }
    }

    fn wire(&self) -> DeleteAclsFilter {
        DeleteAclsFilter::default()
            .with_resource_type_filter(self.resource_type.code())
            .with_resource_name_filter(self.resource_name.as_deref().map(s))
            .with_pattern_type_filter(self.pattern_type.code())
            .with_principal_filter(self.principal.as_deref().map(s))
            .with_host_filter(self.host.as_deref().map(s))
            .with_operation(self.operation.code())
            .with_permission_type(self.permission.code())
    }
}

impl Admin {
    /// Creates each binding. One outcome per binding, in the order asked; creating one that
    /// exists already succeeds. Without an authorizer on the cluster, SECURITY_DISABLED.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the bindings may still
    /// be created (see [`Admin`]).
    pub async fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> Result<Vec<(AclBinding, Result<(), Error>)>, Error> {
        let creations = bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(s(&b.resource_name))
                    .with_resource_pattern_type(b.pattern_type.code())
                    .with_principal(s(&b.principal))
                    .with_host(s(&b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code())
            })
            .collect();
        let request = CreateAclsRequest::default().with_creations(creations);
        let (response, _) = self.cluster.any_broker().await?.request(&request).await?;
        // The answer lists the results in the order of the creations.
        Ok(bindings
            .iter()
            .enumerate()
            .map(|(i, binding)| {
                let answer = response
                    .results
                    .get(i)
                    .map(|r| (r.error_code, r.error_message.as_ref()));
                let result = item_answer("CreateAcls", &acl_resource(binding), answer);
                (binding.clone(), result)
            })
            .collect())
    }

    /// Every binding `filter` matches, sorted.
    ///
    /// Cancel-safe: it only reads.
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, Error> {
        let wire = filter.wire();
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(wire.resource_type_filter)
            .with_resource_name_filter(wire.resource_name_filter)
            .with_pattern_type_filter(wire.pattern_type_filter)
            .with_principal_filter(wire.principal_filter)
            .with_host_filter(wire.host_filter)
            .with_operation(wire.operation)
            .with_permission_type(wire.permission_type);
        let (response, _) = self.cluster.any_broker().await?.request(&request).await?;
        let answer = Some((response.error_code, response.error_message.as_ref()));
        item_answer(
            "DescribeAcls",
            &Resource::Acl(format!("{filter:?}")),
            answer,
        )?;
        let mut bindings: Vec<AclBinding> = response
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(|a| {
                    let resource = (r.resource_type, &r.resource_name, r.pattern_type);
                    let entry = (&a.principal, &a.host, a.operation, a.permission_type);
                    AclBinding::from_wire(resource, entry)
                })
            })
            .collect();
        bindings.sort_by_cached_key(|b| format!("{b:?}"));
        Ok(bindings)
    }

    /// Deletes every binding each filter matches. One outcome per filter, in the order asked:
    /// the bindings it deleted (none is no error), or why it failed.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the bindings may still
    /// be deleted (see [`Admin`]).
    pub async fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<(AclFilter, Result<Vec<AclBinding>, Error>)>, Error> {
        let request = DeleteAclsRequest::default()
            .with_filters(filters.iter().map(AclFilter::wire).collect());
        let (response, _) = self.cluster.any_broker().await?.request(&request).await?;
        Ok(filters
            .iter()
            .enumerate()
            .map(|(i, filter)| {
                let what = Resource::Acl(format!("{filter:?}"));
                // The answer lists the results in the order of the filters.
                let result = match response.filter_results.get(i) {
                    None => Err(missing_answer("DeleteAcls", &what)),
                    Some(r) => item_answer(
                        "DeleteAcls",
                        &what,
                        Some((r.error_code, r.error_message.as_ref())),
                    )
                    .and_then(|()| {
                        r.matching_acls
                            .iter()
                            .map(|m| {
                                let resource = (m.resource_type, &m.resource_name, m.pattern_type);
                                let entry = (&m.principal, &m.host, m.operation, m.permission_type);
                                let binding = AclBinding::from_wire(resource, entry);
                                let answer = Some((m.error_code, m.error_message.as_ref()));
                                item_answer("DeleteAcls", &acl_resource(&binding), answer)
                                    .map(|()| binding)
                            })
                            .collect()
                    }),
                };
                (filter.clone(), result)
            })
            .collect())
    }
}

/// How an error about `binding` names it.
fn acl_resource(binding: &AclBinding) -> Resource {
    Resource::Acl(binding.to_string())
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

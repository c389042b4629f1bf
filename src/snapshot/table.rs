//! The `kinds!` macro: one table row per kind the checks can read generates
//! the [`Kind`](super::Kind) variant and its facts (`apiVersion`, `kind`,
//! plural, scope, providing CRD), the [`Snapshot`](super::Snapshot) field that
//! stores it, its [`Stored`](super::Stored) implementation (how it is trimmed
//! and watched) and the snapshot operations that go over every kind.
//!
//! A row:
//!
//! ```text
//! /// doc of the Kind variant
//! Variant => RustType, field_name, "apiVersion", "Kind", "plural", Namespaced | Cluster
//!     [, crd "plural.group"] [, trim trim_fn] [, cached cached_fn] [, full FullType] [, watch_in "namespace"] [, implicit_namespace = false] [, offline = true];
//! ```
//!
//! `crd` marks a kind provided by an optional CustomResourceDefinition (watched
//! only once it exists); `trim` names the function that drops, after
//! [`super::trim::metadata`] (which every kind gets), what no check reads before
//! the object is cached; `cached` names the predicate that tells, after
//! trimming, whether the object is kept at all (an object judged through its
//! owner is not: see [`super::Stored::cached`]); `full` names the complete API type of a kind whose
//! cached type is a compact view ([`crate::resources::compact`]): offline
//! manifests are validated against it first, so a field of the wrong type
//! is an error even where no check reads it; `watch_in` restricts the operator's watch to one
//! namespace; `implicit_namespace = false` keeps objects of the kind from making
//! their namespace appear in offline input
//! ([`Snapshot::add_implicit_namespaces`](super::Snapshot::add_implicit_namespaces)):
//! Velero's objects live in Velero's own namespace, which is not a workload
//! namespace to check; `offline = true` marks input that is a file, not an
//! API resource (the operator never watches it; `check --manifests` reads it).

/// See the module documentation.
macro_rules! kinds {
    ($(
        $(#[$doc:meta])*
        $variant:ident => $ty:ty, $field:ident, $api_version:literal, $kind:literal, $plural:literal, $scope:ident
        $(, crd $crd:literal)? $(, trim $trim:path)? $(, cached $cached:path)? $(, full $full:ty)? $(, watch_in $ns:literal)? $(, implicit_namespace = $implicit:literal)? $(, offline = $offline:literal)?;
    )*) => {
        /// Every kind of object a check can read. The operator watches exactly
        /// the kinds the active Controls need (see `checks::kinds_for`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        impl Kind {
            /// All kinds, in declaration order.
            pub const ALL: [Kind; [$(Kind::$variant),*].len()] = [$(Kind::$variant),*];

            /// `(apiVersion, kind)` as in a manifest.
            pub fn type_meta(self) -> (&'static str, &'static str) {
                match self {
                    $(Kind::$variant => ($api_version, $kind),)*
                }
            }

            /// The API resource's plural name, e.g. `networkpolicies`.
            pub fn plural(self) -> &'static str {
                match self {
                    $(Kind::$variant => $plural,)*
                }
            }

            /// The name of the CustomResourceDefinition that provides this
            /// kind, for kinds that are not built into Kubernetes; `None` for
            /// built-in kinds.
            pub fn crd_name(self) -> Option<&'static str> {
                match self {
                    $(Kind::$variant => $crate::snapshot::table::kinds!(@crd $($crd)?),)*
                }
            }

            /// Whether the operator can watch this kind: false for offline
            /// input such as the API server's `EncryptionConfiguration`, which
            /// is a file, not an API resource (`check --manifests` reads it).
            pub fn watchable(self) -> bool {
                match self {
                    $(Kind::$variant => !$crate::snapshot::table::kinds!(@offline $($offline)?),)*
                }
            }

            /// Whether objects of this kind live in a namespace.
            pub fn namespaced(self) -> bool {
                match self {
                    $(Kind::$variant => $crate::snapshot::table::kinds!(@namespaced $scope),)*
                }
            }

            /// Calls `v.visit::<T>()` with the Rust type `T` of this kind.
            pub fn visit<V: KindVisitor>(self, v: V) -> V::Output {
                match self {
                    $(Kind::$variant => v.visit::<$ty>(),)*
                }
            }
        }

        /// Everything the engine may read. Build with [`Default`] plus
        /// [`Snapshot::objects_mut`], or [`Snapshot::insert_manifest`].
        #[derive(Debug, Clone, Default)]
        pub struct Snapshot {
            $($field: Objects<$ty>,)*
            /// Optional kinds whose CRD is installed (see [`Kind::crd_name`]).
            installed: KindSet,
            /// The API server's `/metrics`, as far as checks read it; `None`
            /// when it was not read.
            apiserver_metrics: Option<ApiServerMetrics>,
            /// Offline input: objects may be missing from it.
            partial: bool,
        }

        $(
            impl Stored for $ty {
                const KIND: Kind = Kind::$variant;
                fn objects(s: &Snapshot) -> &Objects<Self> {
                    &s.$field
                }
                fn objects_mut(s: &mut Snapshot) -> &mut Objects<Self> {
                    &mut s.$field
                }
                $(fn trim(&mut self) {
                    trim::metadata(self);
                    $trim(self)
                })?
                $(fn cached(&self) -> bool {
                    $cached(self)
                })?
                $(fn validate(value: &serde_json::Value) -> Result<(), serde_json::Error> {
                    <$full as serde::Deserialize>::deserialize(value).map(|_| ())
                })?
                $(fn watch_api(client: kube::Client) -> kube::Api<kube::core::DeserializeGuard<Self>> {
                    kube::Api::namespaced(client, $ns)
                })?
            }
        )*

        impl Snapshot {
            /// Number of objects of all kinds.
            pub fn len(&self) -> usize {
                0 $(+ self.$field.len())*
            }

            /// Applies [`Stored::trim`] to every object, as the operator's
            /// watch caches do before storing them (tests compare verdicts on
            /// trimmed and untrimmed snapshots).
            pub fn trim_all(&mut self) {
                $(self.$field.trim_all();)*
            }

            /// The names of the namespaces that hold objects of a namespaced
            /// kind that implies its namespace (all but the rows with
            /// `implicit_namespace = false`).
            pub fn occupied_namespaces(&self) -> BTreeSet<String> {
                let mut seen = BTreeSet::new();
                $(
                    if $crate::snapshot::table::kinds!(@namespaced $scope)
                        && $crate::snapshot::table::kinds!(@implicit $($implicit)?)
                    {
                        seen.extend(self.$field.namespaces().filter(|n| !n.is_empty()).map(str::to_owned));
                    }
                )*
                seen
            }
        }
    };
    (@crd) => { None };
    (@crd $crd:literal) => { Some($crd) };
    (@offline) => { false };
    (@offline $offline:literal) => { $offline };
    (@implicit) => { true };
    (@implicit $implicit:literal) => { $implicit };
    (@namespaced Namespaced) => { true };
    (@namespaced Cluster) => { false };
}

pub(super) use kinds;

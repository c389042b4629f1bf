//! Bytes per cached object, per kind (`make bench-cache`; figures in
//! BENCHMARKS.md, never in assertions).
//!
//! Input: `bench/fixtures/served.json`, a `List` of objects exactly as a
//! Kubernetes v1.36 API server served them (`kubectl get -o json`: with
//! `managedFields`, `status` and every defaulted field) — the scale
//! benchmark's objects of one namespace, the ReplicaSet, Pods and Job the
//! controllers made from them, and Online Boutique's Deployments with theirs.
//!
//! For each object, [`COPIES`] copies are decoded the way the operator's
//! watch cache stores them (decoded as the kind's cached type, then
//! [`Stored::trim`], then put in an `Arc`) and kept alive; the heap bytes
//! still allocated afterwards (a counting global allocator: the sizes asked
//! for, without the allocator's own per-chunk overhead) divided by the
//! number of copies, plus the 8-byte `Arc` pointer the cache's index holds,
//! is the object's cost. The `whole` column decodes the same object as its
//! k8s-openapi type without trimming (what a plain kube-runtime reflector
//! would store), for comparison. An object the cache does not keep
//! ([`Stored::cached`]: judged through its owner) costs 0. Per kind: the mean
//! over that kind's objects.
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use serde::de::DeserializeOwned;
use serde_json::Value;
use soc2_operator::snapshot::{Kind, KindVisitor, Stored};

/// Copies of each object kept alive while measuring.
const COPIES: usize = 200;

/// Counts the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a
// counter is updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes per object that `decode` keeps alive, over [`COPIES`] copies.
fn bytes_per_object<T>(value: &Value, decode: impl Fn(&Value) -> Option<T>) -> Option<f64> {
    let mut kept: Vec<T> = Vec::with_capacity(COPIES);
    let before = LIVE.load(Ordering::Relaxed);
    for _ in 0..COPIES {
        kept.push(decode(value)?);
    }
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) as f64 / COPIES as f64;
    drop(kept);
    Some(per + std::mem::size_of::<usize>() as f64)
}

/// The cost of one object as the cache stores it.
struct Cached<'a>(&'a Value);

impl KindVisitor for Cached<'_> {
    type Output = Option<f64>;
    fn visit<K: Stored>(self) -> Option<f64> {
        let mut probe = K::deserialize(self.0).ok()?;
        probe.trim();
        if !probe.cached() {
            // Judged through its owner: not kept at all.
            return Some(0.0);
        }
        bytes_per_object(self.0, |v| {
            let mut o = K::deserialize(v).ok()?;
            o.trim();
            Some(Arc::new(o))
        })
    }
}

/// The cost of the whole k8s-openapi object of `kind`, untrimmed.
fn whole(kind: Kind, value: &Value) -> Option<f64> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    fn of<K: DeserializeOwned>(v: &Value) -> Option<f64> {
        bytes_per_object(v, |v| K::deserialize(v).ok().map(Arc::new))
    }
    match kind {
        Kind::Pod => of::<core::Pod>(value),
        Kind::Deployment => of::<apps::Deployment>(value),
        Kind::StatefulSet => of::<apps::StatefulSet>(value),
        Kind::DaemonSet => of::<apps::DaemonSet>(value),
        Kind::ReplicaSet => of::<apps::ReplicaSet>(value),
        Kind::ReplicationController => of::<core::ReplicationController>(value),
        Kind::Job => of::<batch::Job>(value),
        Kind::CronJob => of::<batch::CronJob>(value),
        Kind::Namespace => of::<core::Namespace>(value),
        Kind::ServiceAccount => of::<core::ServiceAccount>(value),
        Kind::LimitRange => of::<core::LimitRange>(value),
        Kind::ResourceQuota => of::<core::ResourceQuota>(value),
        Kind::PersistentVolumeClaim => of::<core::PersistentVolumeClaim>(value),
        Kind::NetworkPolicy => of::<k8s_openapi::api::networking::v1::NetworkPolicy>(value),
        Kind::Ingress => of::<k8s_openapi::api::networking::v1::Ingress>(value),
        Kind::PodDisruptionBudget => of::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(value),
        Kind::Role => of::<k8s_openapi::api::rbac::v1::Role>(value),
        Kind::RoleBinding => of::<k8s_openapi::api::rbac::v1::RoleBinding>(value),
        _ => None,
    }
}

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/fixtures/served.json");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read fixture"))
        .expect("fixture is JSON");
    // kind -> (objects, whole bytes, cached bytes)
    let mut rows: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
    for item in list["items"].as_array().expect("a List") {
        let (Some(api_version), Some(kind)) = (item["apiVersion"].as_str(), item["kind"].as_str())
        else {
            continue;
        };
        let Some(k) = Kind::from_type_meta(api_version, kind) else {
            continue;
        };
        let (Some(w), Some(c)) = (whole(k, item), k.visit(Cached(item))) else {
            eprintln!(
                "skipped {kind} {}: does not decode",
                item["metadata"]["name"]
            );
            continue;
        };
        let owned = item["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| o.iter().any(|r| r["controller"] == Value::Bool(true)));
        let label = match (kind, owned) {
            ("Pod" | "ReplicaSet" | "Job", true) => format!("{kind} (owned)"),
            ("Pod", false) => "Pod (bare)".to_owned(),
            _ => kind.to_owned(),
        };
        let row = rows.entry(label).or_default();
        row.0 += 1;
        row.1 += w;
        row.2 += c;
    }
    println!("| kind | objects | whole k8s-openapi object (bytes) | cached (bytes) |");
    println!("|---|---|---|---|");
    for (kind, (n, w, c)) in rows {
        println!(
            "| {kind} | {n} | {:.0} | {:.0} |",
            w / n as f64,
            c / n as f64
        );
    }
}

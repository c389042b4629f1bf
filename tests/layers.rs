//! The shape of the code, read from `src/` with `syn`: the modules form
//! layers whose imports point down only, without a cycle, and functions stay
//! short enough to name what they do.
//!
//! Units: every top-level module of the crate (a module together with its
//! private submodules), except `checks`, whose every family and helper module
//! is a unit of its own beside the registry (`checks/mod.rs`). An edge is any
//! path that names another unit (`use`, an expression, a type, a macro call).
//!
//! Floors, from the ground up (CONTRIBUTING.md, "Layers"):
//!
//! | floor | units |
//! |---|---|
//! | ground | `api`, `snapshot`, `resources` |
//! | vocabulary | `vocabulary` |
//! | families | `checks::<family>`, `checks::<helper>` |
//! | registry | `checks` |
//! | engine | `engine`, `incremental` |
//! | controller | `controller`, `metrics`, `http` |
//! | top | `commands`, `cli`, `main` |
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The floor of a unit; `None` for a unit the table does not know (a new
/// top-level module must be placed in a floor).
fn floor(unit: &str) -> Option<u8> {
    Some(match unit {
        "api" | "snapshot" | "resources" => 0,
        "vocabulary" => 1,
        u if u.starts_with("checks::") => 2,
        "checks" => 3,
        "engine" | "incremental" => 4,
        "controller" | "metrics" | "http" => 5,
        "commands" | "cli" | "main" => 6,
        _ => return None,
    })
}

const FLOOR_NAMES: [&str; 7] = [
    "ground",
    "vocabulary",
    "families",
    "registry",
    "engine",
    "controller",
    "top",
];

/// The modules under `src/checks/` that are helpers two families share, not
/// families: the only family-floor modules a family may import.
const FAMILY_HELPERS: [&str; 2] = ["checks::apiserver", "checks::workloads"];

/// Longest function body allowed, in lines (outside tests).
const MAX_FUNCTION_LINES: usize = 80;

struct File {
    path: PathBuf,
    /// Module path, e.g. `["checks", "rbac"]`; `[]` for `lib.rs`, `["main"]`
    /// for the binary.
    module: Vec<String>,
    ast: syn::File,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files() -> Vec<File> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(src()).unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            File { path, module, ast }
        })
        .collect()
}

/// The unit a module belongs to.
fn unit(module: &[String]) -> String {
    match module {
        [] => String::new(),
        [c, family, ..] if c == "checks" => format!("checks::{family}"),
        [first, ..] => first.clone(),
    }
}

/// Collects every path a file names, resolved to absolute module paths.
struct Paths<'a> {
    modules: &'a BTreeSet<Vec<String>>,
    /// The module being visited (inline `mod` blocks push onto it).
    current: Vec<String>,
    found: BTreeSet<Vec<String>>,
}

impl Paths<'_> {
    fn resolve(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.current.clone(),
            "super" => {
                let mut b = self.current.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    b.pop();
                    rest = &rest[1..];
                }
                let mut full = b;
                full.extend(rest.iter().cloned());
                self.found.insert(full);
                return;
            }
            _ => {
                // Relative: a child module of the current one, or not ours.
                let mut child = self.current.clone();
                child.push(first.clone());
                if !self.modules.contains(&child) {
                    return;
                }
                self.current.clone()
            }
        };
        let rest = if first == "crate" || first == "self" {
            &segments[1..]
        } else {
            segments
        };
        base.extend(rest.iter().cloned());
        self.found.insert(base);
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.resolve(&full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.resolve(&full);
            }
            syn::UseTree::Glob(_) => {
                let full = prefix.clone();
                self.resolve(&full);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.resolve(&segments);
        syn::visit::visit_path(self, p);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.current.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.current.pop();
    }
}

/// The unit of the longest known module that `path` starts with.
fn target_unit(modules: &BTreeSet<Vec<String>>, path: &[String]) -> String {
    (0..=path.len())
        .rev()
        .map(|n| &path[..n])
        .find(|p| modules.contains(*p))
        .map(unit)
        .unwrap_or_default()
}

/// `unit → units it names`, and for each edge one file that makes it.
fn graph(files: &[File]) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for f in files {
        let mut v = Paths {
            modules: &modules,
            current: f.module.clone(),
            found: BTreeSet::new(),
        };
        v.visit_file(&f.ast);
        let from = unit(&f.module);
        edges.entry(from.clone()).or_default();
        for p in v.found {
            let to = target_unit(&modules, &p);
            // The crate root only declares modules and `VERSION`.
            if to.is_empty() || to == from {
                continue;
            }
            edges
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_insert_with(|| f.path.clone());
        }
    }
    edges
}

/// Strongly connected components with more than one unit (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, PathBuf>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn src_has_no_import_cycle() {
    let edges = graph(&files());
    let found = cycles(&edges);
    let explain: Vec<String> = found
        .iter()
        .map(|scc| {
            let inner: Vec<String> = scc
                .iter()
                .flat_map(|a| {
                    edges[a]
                        .iter()
                        .filter(|(b, _)| scc.contains(b))
                        .map(move |(b, file)| format!("{a} → {b} ({})", file.display()))
                })
                .collect();
            inner.join("\n  ")
        })
        .collect();
    assert!(
        found.is_empty(),
        "import cycles in src/:\n  {}",
        explain.join("\n\n  ")
    );
}

/// For every edge `from → to` (and the file that makes it), what `rule`
/// finds wrong with it.
fn wrong_edges(rule: impl Fn(&str, &str, &Path) -> Option<String>) -> Vec<String> {
    graph(&files())
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |(to, file)| (from, to, file)))
        .filter_map(|(from, to, file)| rule(from, to, file))
        .collect()
}

#[test]
fn imports_point_down_the_floors() {
    let floorless: Vec<String> = graph(&files())
        .into_keys()
        .filter(|u| !u.is_empty() && floor(u).is_none())
        .map(|u| format!("{u} has no floor: place it in tests/layers.rs and CONTRIBUTING.md"))
        .collect();
    assert!(floorless.is_empty(), "{}", floorless.join("\n"));
    let name = |f: Option<u8>| {
        f.and_then(|f| FLOOR_NAMES.get(usize::from(f)))
            .copied()
            .unwrap_or("no floor")
    };
    let up = wrong_edges(|from, to, file| {
        let (f, t) = (floor(from)?, floor(to));
        (t.is_none_or(|t| t > f)).then(|| {
            format!(
                "{from} ({}) imports {to} ({}) in {}",
                name(Some(f)),
                name(t),
                file.display()
            )
        })
    });
    assert!(up.is_empty(), "imports that point up:\n{}", up.join("\n"));
}

#[test]
fn families_speak_only_the_vocabulary_the_ground_and_the_helpers() {
    let wrong = wrong_edges(|from, to, file| {
        let allowed = matches!(floor(to), Some(0 | 1)) || FAMILY_HELPERS.contains(&to);
        (from.starts_with("checks::") && !allowed)
            .then(|| format!("{from} imports {to} in {}", file.display()))
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // And the test sees the edges it is meant to police.
    let edges = graph(&files());
    assert!(edges["checks::rbac"].contains_key("vocabulary"));
    assert!(edges["checks"].contains_key("checks::rbac"));
    assert!(edges["engine"].contains_key("checks"));
}

/// Functions (outside tests) that are longer than [`MAX_FUNCTION_LINES`].
#[test]
fn functions_are_short_enough_to_name_what_they_do() {
    struct Long<'a> {
        file: &'a Path,
        test: usize,
        out: Vec<String>,
    }
    impl Long<'_> {
        fn check(&mut self, name: &syn::Ident, block: &syn::Block) {
            if self.test > 0 {
                return;
            }
            let (start, end) = (
                name.span().start().line,
                block.brace_token.span.close().end().line,
            );
            let lines = end + 1 - start;
            if lines > MAX_FUNCTION_LINES {
                self.out.push(format!(
                    "{}:{start} {name}: {lines} lines",
                    self.file.display()
                ));
            }
        }
    }
    fn is_test(attrs: &[syn::Attribute]) -> bool {
        attrs.iter().any(|a| {
            a.path().is_ident("test")
                || (a.path().is_ident("cfg")
                    && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test"))
        })
    }
    impl<'ast> Visit<'ast> for Long<'_> {
        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            self.check(&f.sig.ident, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
        fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
            self.check(&f.sig.ident, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
        fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
            let test = is_test(&m.attrs);
            self.test += usize::from(test);
            syn::visit::visit_item_mod(self, m);
            self.test -= usize::from(test);
        }
    }
    let mut out = Vec::new();
    for f in files() {
        // Whole files of tests (declared under #[cfg(test)]).
        if f.module.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let mut v = Long {
            file: &f.path,
            test: 0,
            out: Vec::new(),
        };
        v.visit_file(&f.ast);
        out.extend(v.out);
    }
    assert!(
        out.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them where the parts have names):\n{}",
        out.join("\n")
    );
}

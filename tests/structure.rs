//! The shape of `src/`, checked from its text: no import loops between modules, and no
//! `ptr::eq` on DocType metadata (the engine never asks which DocType it holds).
//!
//! The module graph: a node per module (a file, or an inline `mod name { … }`); an edge from a
//! module to every module a path in it names that starts with `crate::`, `super::` or `self::`
//! (in a `use` or anywhere else, macros included), or with a name a `use` brought in. A path
//! names the longest module it starts with (`crate::auth::store::User` → `auth::store`). A
//! module's own ancestors and descendants are part of it (`use super::*` in a child, a parent
//! re-exporting a child's item): edges between them do not count.

// A test fails by panicking: unwrap and expect are how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// Module edges allowed to close a loop: none. (An entry, for a loop being taken apart in
/// steps, must still close a loop, or the test fails until it is removed.)
const KNOWN_LOOP_EDGES: &[(&str, &str)] = &[];

/// Files allowed to compare metadata by address, and how many times: none. (A file may not
/// gain one, nor a new file start; an entry must match its file's count exactly.)
const KNOWN_PTR_EQ: &[(&str, usize)] = &[];

type Module = Vec<String>;

fn module_name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// The module a file under `src/` is.
fn file_module(rel: &Path) -> Module {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every library source file (the binary's `main.rs` is another crate) with its module.
fn sources() -> Vec<(Module, String, TokenStream)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("under src").to_path_buf();
            let text = std::fs::read_to_string(&p).expect("read source");
            let tokens =
                TokenStream::from_str(&text).unwrap_or_else(|e| panic!("{}: {e:?}", rel.display()));
            let name = format!("src/{}", rel.to_string_lossy().replace('\\', "/"));
            (file_module(&rel), name, tokens)
        })
        .collect()
}

fn is_punct(t: Option<&TokenTree>, c: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

fn is_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    is_punct(tokens.get(i), ':') && is_punct(tokens.get(i + 1), ':')
}

fn ident(t: Option<&TokenTree>) -> Option<String> {
    match t {
        Some(TokenTree::Ident(i)) => Some(i.to_string()),
        _ => None,
    }
}

/// Splits a token list on top-level commas.
fn split_commas(tokens: Vec<TokenTree>) -> Vec<Vec<TokenTree>> {
    let mut parts = vec![Vec::new()];
    for t in tokens {
        if is_punct(Some(&t), ',') {
            parts.push(Vec::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(t);
        }
    }
    parts
}

/// The paths starting at `tokens[i]`: `a::b::C`, `a::{b, c::D}`, `a::b as x`; each with the
/// name it is renamed to by `as`, if it is.
fn read_path(
    tokens: &[TokenTree],
    mut i: usize,
    prefix: Vec<String>,
) -> Vec<(Vec<String>, Option<String>)> {
    let mut path = prefix;
    loop {
        match tokens.get(i) {
            Some(TokenTree::Ident(id)) => path.push(id.to_string()),
            Some(TokenTree::Punct(p)) if p.as_char() == '*' => return vec![(path, None)],
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                return split_commas(inner)
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .flat_map(|part| read_path(&part, 0, path.clone()))
                    .collect();
            }
            _ => return vec![(path, None)],
        }
        if is_path_sep(tokens, i + 1) {
            i += 3;
        } else {
            let rename = match (
                ident(tokens.get(i + 1)).as_deref(),
                ident(tokens.get(i + 2)),
            ) {
                (Some("as"), Some(name)) => Some(name),
                _ => None,
            };
            return vec![(path, rename)];
        }
    }
}

/// What one module's text names: paths from the crate root, relative to itself, or through
/// a name its `use`s brought in.
struct Scan<'a> {
    modules: &'a BTreeSet<Module>,
    /// (from, to, path as written).
    edges: &'a mut Vec<(Module, Module, String)>,
    ptr_eq: &'a mut BTreeMap<String, usize>,
    file: &'a str,
}

impl Scan<'_> {
    /// Resolves a path written in `module` to absolute segments, if it is one of the crate's.
    fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
        let mut base: Vec<String> = module.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The longest known module `path` starts with.
    fn target(&self, path: &[String]) -> Module {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| self.modules.contains(m))
            .unwrap_or_default()
    }

    fn edge(&mut self, module: &[String], path: Vec<String>) {
        let to = self.target(&path);
        let related = to.starts_with(module) || module.starts_with(&to);
        if !related {
            self.edges
                .push((module.to_vec(), to, path.join("::").to_string()));
        }
    }

    /// Scans the tokens of one module (`module`); `aliases` are the crate paths its `use`s
    /// brought in, by the name they go by.
    fn module(&mut self, module: &[String], tokens: Vec<TokenTree>) {
        // The names `use` brings in come first: a path may use one before its `use` line.
        let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
        collect_uses(module, &tokens, &mut aliases);
        self.tokens(module, &tokens, &aliases);
    }

    fn tokens(
        &mut self,
        module: &[String],
        tokens: &[TokenTree],
        aliases: &BTreeMap<String, Vec<String>>,
    ) {
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            // An inline module: its own node, with its own `use`s.
            if ident(Some(t)).as_deref() == Some("mod") {
                if let (Some(name), Some(TokenTree::Group(g))) =
                    (ident(tokens.get(i + 1)), tokens.get(i + 2))
                {
                    if g.delimiter() == Delimiter::Brace {
                        let mut inner = module.to_vec();
                        inner.push(name);
                        self.module(&inner, g.stream().into_iter().collect());
                        i += 3;
                        continue;
                    }
                }
            }
            // Not the middle of a path, a field or method, or `$crate`.
            let continues = i >= 1
                && ['.', ':', '$']
                    .iter()
                    .any(|c| is_punct(tokens.get(i - 1), *c));
            if let Some(first) = ident(Some(t)) {
                if !continues && is_path_sep(tokens, i + 1) {
                    let paths = read_path(tokens, i, Vec::new());
                    for (p, _) in paths {
                        let abs = Self::absolute(module, &p).or_else(|| {
                            aliases.get(&first).map(|base| {
                                let mut full = base.clone();
                                full.extend(p[1..].iter().cloned());
                                full
                            })
                        });
                        if let Some(abs) = abs {
                            self.edge(module, abs);
                        }
                    }
                    self.ptr_eq(tokens, i);
                }
            }
            if let TokenTree::Group(g) = t {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                self.tokens(module, &inner, aliases);
            }
            i += 1;
        }
    }

    /// `ptr::eq(a, b)` (or `std::ptr::eq`) at `tokens[i..]` where an argument is metadata: a
    /// `meta` (`meta`, `doc.meta`, `&meta`) or a DocType's static (`&CONNECTED_APP`).
    fn ptr_eq(&mut self, tokens: &[TokenTree], i: usize) {
        let mut j = i;
        let mut segments = Vec::new();
        while let Some(id) = ident(tokens.get(j)) {
            segments.push(id);
            if is_path_sep(tokens, j + 1) {
                j += 3;
            } else {
                break;
            }
        }
        if !segments.ends_with(&["ptr".to_string(), "eq".to_string()]) {
            return;
        }
        let Some(TokenTree::Group(args)) = tokens.get(j + 1) else {
            return;
        };
        let on_meta = split_commas(args.stream().into_iter().collect())
            .iter()
            .any(|arg| {
                let idents: Vec<String> = arg.iter().filter_map(|t| ident(Some(t))).collect();
                let last = idents.last().map(String::as_str).unwrap_or("");
                let is_static = last.len() > 1
                    && last
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
                last == "meta" || (is_punct(arg.first(), '&') && is_static)
            });
        if on_meta {
            *self.ptr_eq.entry(self.file.to_string()).or_default() += 1;
        }
    }
}

/// The crate paths the `use` items directly in `tokens` bring in, by the name they go by.
fn collect_uses(module: &[String], tokens: &[TokenTree], out: &mut BTreeMap<String, Vec<String>>) {
    for (i, t) in tokens.iter().enumerate() {
        if ident(Some(t)).as_deref() != Some("use") {
            continue;
        }
        for (p, rename) in read_path(tokens, i + 1, Vec::new()) {
            let Some(mut abs) = Scan::absolute(module, &p) else {
                continue;
            };
            // `use a::b::{self}` names `b`.
            if abs.last().map(String::as_str) == Some("self") {
                abs.pop();
            }
            let name = rename.or_else(|| abs.last().cloned());
            if let Some(name) = name.filter(|n| n != "_") {
                out.insert(name, abs);
            }
        }
    }
}

struct Graph {
    modules: BTreeSet<Module>,
    edges: Vec<(Module, Module, String)>,
    ptr_eq: BTreeMap<String, usize>,
}

fn graph() -> Graph {
    let files = sources();
    let mut modules: BTreeSet<Module> = files.iter().map(|(m, _, _)| m.clone()).collect();
    // Inline modules are nodes too.
    fn inline(module: &[String], tokens: &[TokenTree], out: &mut BTreeSet<Module>) {
        for (i, t) in tokens.iter().enumerate() {
            if ident(Some(t)).as_deref() == Some("mod") {
                if let (Some(name), Some(TokenTree::Group(g))) =
                    (ident(tokens.get(i + 1)), tokens.get(i + 2))
                {
                    if g.delimiter() == Delimiter::Brace {
                        let mut m = module.to_vec();
                        m.push(name);
                        let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                        inline(&m, &inner, out);
                        out.insert(m);
                    }
                }
            }
        }
    }
    for (m, _, tokens) in &files {
        let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
        inline(m, &tokens, &mut modules);
    }
    let mut edges = Vec::new();
    let mut ptr_eq = BTreeMap::new();
    for (m, file, tokens) in &files {
        let mut scan = Scan {
            modules: &modules,
            edges: &mut edges,
            ptr_eq: &mut ptr_eq,
            file,
        };
        scan.module(m, tokens.clone().into_iter().collect());
    }
    Graph {
        modules,
        edges,
        ptr_eq,
    }
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn loops(nodes: &BTreeSet<String>, edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    struct T<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        counter: usize,
        out: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.counter);
            self.low.insert(v, self.counter);
            self.counter += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.next.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
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
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        counter: 0,
        out: Vec::new(),
    };
    for (a, b) in edges {
        t.next.entry(a.as_str()).or_default().push(b.as_str());
    }
    for n in nodes {
        if !t.index.contains_key(n.as_str()) {
            t.visit(n);
        }
    }
    t.out
}

fn describe(
    scc: &[String],
    edges: &BTreeSet<(String, String)>,
    how: &BTreeMap<(String, String), String>,
) -> String {
    let members: BTreeSet<&String> = scc.iter().collect();
    let mut lines = vec![format!("loop between {}:", scc.join(", "))];
    for (a, b) in edges {
        if members.contains(a) && members.contains(b) {
            let via = how
                .get(&(a.clone(), b.clone()))
                .cloned()
                .unwrap_or_default();
            lines.push(format!("  {a} -> {b}   (crate::{via})"));
        }
    }
    lines.join("\n")
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    let nodes: BTreeSet<String> = g.modules.iter().map(|m| module_name(m)).collect();
    let mut how = BTreeMap::new();
    let mut all = BTreeSet::new();
    for (a, b, path) in &g.edges {
        let key = (module_name(a), module_name(b));
        how.entry(key.clone()).or_insert_with(|| path.clone());
        all.insert(key);
    }
    let known: BTreeSet<(String, String)> = KNOWN_LOOP_EDGES
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let remaining: BTreeSet<(String, String)> = all.difference(&known).cloned().collect();
    let found = loops(&nodes, &remaining);
    assert!(
        found.is_empty(),
        "import loops (a module imports one that imports it back):\n{}",
        found
            .iter()
            .map(|scc| describe(scc, &remaining, &how))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Each known edge must still be there and still close a loop.
    let in_loops: BTreeSet<String> = loops(&nodes, &all).into_iter().flatten().collect();
    for (a, b) in &known {
        assert!(
            all.contains(&(a.clone(), b.clone())) && in_loops.contains(a) && in_loops.contains(b),
            "KNOWN_LOOP_EDGES lists {a} -> {b}, which closes no loop any more: remove it"
        );
    }
}

#[test]
fn no_metadata_is_compared_by_address() {
    let g = graph();
    let known: BTreeMap<String, usize> = KNOWN_PTR_EQ
        .iter()
        .map(|(f, n)| (f.to_string(), *n))
        .collect();
    assert_eq!(
        g.ptr_eq, known,
        "`ptr::eq` on DocType metadata (left: found, right: KNOWN_PTR_EQ): a DocType's rules go \
         into its hooks (docs/CONVENTIONS.md); the engine never asks which DocType it holds"
    );
}

#[test]
fn the_scanner_sees_paths_groups_renames_and_inline_modules() {
    let modules: BTreeSet<Module> = [
        vec![],
        vec!["a".to_string()],
        vec!["a".to_string(), "b".to_string()],
        vec!["c".to_string()],
        vec!["c".to_string(), "tests".to_string()],
        vec!["d".to_string()],
    ]
    .into_iter()
    .collect();
    let text = "use super::{a::b::{X, Y}, d};\n\
                fn f() { d::g(); crate::a::h(); self::tests::k(); std::ptr::eq(meta, &TOKEN_CACHE); }\n\
                mod tests { use super::*; fn t() { crate::d::z(); } }";
    let mut edges = Vec::new();
    let mut ptr_eq = BTreeMap::new();
    let mut scan = Scan {
        modules: &modules,
        edges: &mut edges,
        ptr_eq: &mut ptr_eq,
        file: "src/c.rs",
    };
    let module = vec!["c".to_string()];
    scan.module(
        &module,
        TokenStream::from_str(text)
            .expect("tokens")
            .into_iter()
            .collect(),
    );
    let got: BTreeSet<(String, String)> = edges
        .iter()
        .map(|(a, b, _)| (module_name(a), module_name(b)))
        .collect();
    let want: BTreeSet<(String, String)> =
        [("c", "a::b"), ("c", "d"), ("c", "a"), ("c::tests", "d")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(got, want);
    assert_eq!(ptr_eq.get("src/c.rs"), Some(&1));
}

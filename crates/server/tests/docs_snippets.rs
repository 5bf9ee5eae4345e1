//! Every TOML snippet in the user documentation (`README.md`, `docs/*.md`) is a configuration
//! the real binary accepts: each ```toml block is written to a file of its own and passed to
//! `rtcroom check-config --config FILE`, which must succeed. So the documentation cannot
//! drift from the configuration the code reads.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fenced ```toml block: where it starts (for the failure message) and its text.
#[derive(Debug)]
struct Snippet {
    file: String,
    line: usize,
    text: String,
}

/// The ```toml blocks of a Markdown text. A block may be indented (inside a list item): its
/// lines lose the fence's indentation.
fn toml_blocks(file: &str, markdown: &str) -> Vec<Snippet> {
    let mut blocks = Vec::new();
    // The block being read: its first line, the fence's indentation, the text so far.
    let mut open: Option<(usize, usize, String)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None if trimmed.trim_end() == "```toml" => {
                open = Some((n + 2, line.len() - trimmed.len(), String::new()));
            }
            None => {}
            Some(_) if trimmed.starts_with("```") => {
                let (line, _, text) = open.take().expect("a block is open");
                blocks.push(Snippet {
                    file: file.to_owned(),
                    line,
                    text,
                });
            }
            Some((_, indent, text)) => {
                let cut = line.len() - line.trim_start().len();
                text.push_str(&line[cut.min(*indent)..]);
                text.push('\n');
            }
        }
    }
    assert!(open.is_none(), "{file}: a ```toml block is never closed");
    blocks
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every docs/*.md, with their paths relative to the repository.
fn documentation() -> Vec<(String, String)> {
    let root = repo_root();
    let mut files = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(&f)).expect("readable");
            (f, text)
        })
        .collect()
}

/// A scratch directory for this test process; removed by the caller.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcroom-docs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// `rtcroom check-config --config FILE` on `text`, run in `dir` with no `RTCROOM_*` variable
/// of the caller's environment, so that only the snippet (and the defaults) count. Returns
/// whether it succeeded, and its standard error.
fn check_config(dir: &Path, name: &str, text: &str) -> (bool, String) {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write the snippet");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtcroom"));
    cmd.arg("check-config")
        .arg("--config")
        .arg(&file)
        .current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("RTCROOM_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("the rtcroom binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `dir/tls/fullchain.pem` and `dir/tls/privkey.pem`: a self-signed certificate and its key.
fn make_tls_files(dir: &Path) {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    common::self_signed_cert(
        &tls.join("fullchain.pem"),
        &tls.join("privkey.pem"),
        "localhost",
    );
}

#[test]
fn every_toml_snippet_in_the_docs_passes_check_config() {
    let dir = scratch("snippets");
    let mut snippets = Vec::new();
    for (file, text) in documentation() {
        snippets.extend(toml_blocks(&file, &text));
    }
    // The guides that configure something show it: a count that only grows keeps the test
    // from passing because the blocks were no longer found.
    assert!(
        snippets.len() >= 6,
        "only {} ```toml blocks found in README.md and docs/: {snippets:?}",
        snippets.len()
    );
    for file in [
        "README.md",
        "docs/auth.md",
        "docs/cluster.md",
        "docs/ice.md",
        "docs/records.md",
        "docs/report.md",
    ] {
        assert!(
            snippets.iter().any(|s| s.file == file),
            "{file} has no ```toml block any more"
        );
    }
    // A snippet that turns TLS on names its files relative to the configuration's folder
    // (docs/operations.md): they exist there, as a real certificate and key.
    make_tls_files(&dir);
    let mut failures = Vec::new();
    for (i, s) in snippets.iter().enumerate() {
        let (ok, stderr) = check_config(&dir, &format!("snippet-{i}.toml"), &s.text);
        if !ok {
            failures.push(format!(
                "{}:{}: check-config refused it:\n{}\n--- the snippet ---\n{}",
                s.file, s.line, stderr, s.text
            ));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The check can fail: a snippet with a key in the wrong section, or a value the server
/// refuses, is refused by the same path.
#[test]
fn a_wrong_snippet_is_refused() {
    let dir = scratch("wrong");
    let doc = "Text.\n\n  ```toml\n  [report]\n  from = \"rtcroom <report@example.com>\"\n  ```\n\n```toml\n[room]\nmax_capacity = 1\n```\n";
    let blocks = toml_blocks("wrong.md", doc);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].line, 4, "the line of the block's first line");
    assert_eq!(
        blocks[0].text,
        "[report]\nfrom = \"rtcroom <report@example.com>\"\n"
    );
    for (i, b) in blocks.iter().enumerate() {
        let (ok, stderr) = check_config(&dir, &format!("wrong-{i}.toml"), &b.text);
        assert!(!ok, "accepted:\n{}", b.text);
        assert!(!stderr.is_empty(), "refused without saying why");
    }
    let (ok, stderr) = check_config(&dir, "right.toml", "[smtp]\nfrom = \"r <r@example.com>\"\n");
    assert!(ok, "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

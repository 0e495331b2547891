//! Build script: the git commit the binary is built from, for `waconnect_build_info`.
//!
//! `WACONNECT_BUILD_COMMIT` wins when set: the container build has no `.git` (see
//! `.dockerignore`) and passes the commit in. Otherwise `git rev-parse HEAD`; without git,
//! `unknown`. Hand-written rather than a crate: it is one git call, and a git library in
//! the build graph would cost more compile time than the whole script.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WACONNECT_BUILD_COMMIT");
    let commit = std::env::var("WACONNECT_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=WACONNECT_BUILD_COMMIT={commit}");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The short commit of HEAD, and rerun triggers for when HEAD moves: the HEAD file
/// (checkout) and the branch's ref (commit). Only existing files are named: cargo reruns
/// a build script every time for a missing one.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &reference]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}

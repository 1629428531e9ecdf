//! Sets `HATA_COMMIT` for `hata_build_info`: the environment's `HATA_COMMIT` when given (a
//! release build from a tarball), else `git rev-parse --short=12 HEAD`, else `unknown`.

fn main() {
    println!("cargo:rerun-if-env-changed=HATA_COMMIT");
    let commit = std::env::var("HATA_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !commit.is_empty()).then_some(commit)
        })
        .unwrap_or_else(|| "unknown".to_string());
    // A new commit moves HEAD (this worktree's) or the branch it names (in the common dir).
    for (flag, path) in [("--git-dir", "HEAD"), ("--git-common-dir", "refs/heads")] {
        if let Ok(out) = std::process::Command::new("git")
            .args(["rev-parse", flag])
            .output()
        {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !dir.is_empty() {
                println!("cargo:rerun-if-changed={dir}/{path}");
            }
        }
    }
    println!("cargo:rustc-env=HATA_COMMIT={commit}");
}

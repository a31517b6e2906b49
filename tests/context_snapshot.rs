//! Snapshot behaviour end to end: determinism, staleness, links, special
//! files, errors, explain, the archive stream and the CLI entry point.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use imagebuild::context::{
    explain, snapshot, snapshot_with, tar_stream, ContextError, ContextRequest, ContextSnapshot,
    Dialect, DockerfileSource, EntryKind, Explanation, ExtraFile, SnapshotOptions,
};

fn request(dir: &Path, cache: &Path) -> ContextRequest {
    ContextRequest {
        extra_inputs: vec![],
        cache_dir: Some(cache.to_path_buf()),
        ..ContextRequest::new(
            dir.to_path_buf(),
            DockerfileSource::Path(dir.join("Dockerfile")),
        )
    }
}

fn write(path: &Path, body: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Waits until fresh files are old enough (ctime included) for the stat
/// cache to trust them; newer ones are deliberately re-read every time.
fn settle() {
    std::thread::sleep(Duration::from_millis(2300));
}

fn cached_files(cache: &Path) -> usize {
    fs::read_dir(cache.join("stat"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn paths(snap: &ContextSnapshot) -> Vec<String> {
    snap.entries.iter().map(|e| e.path.clone()).collect()
}

/// Builds the same small project in `dir` with the given modes and mtime.
fn project(dir: &Path, file_mode: u32, dir_mode: u32, mtime: SystemTime) {
    write(&dir.join("Dockerfile"), b"FROM scratch\nCOPY . /app/\n");
    write(&dir.join(".dockerignore"), b"node_modules\n*.log\n");
    write(&dir.join("src/main.py"), b"print('hi')\n");
    write(&dir.join("src/lib/util.py"), b"X = 1\n");
    write(&dir.join("run.sh"), b"#!/bin/sh\necho run\n");
    write(&dir.join("debug.log"), b"noise");
    write(
        &dir.join("node_modules/dep/index.js"),
        b"module.exports = 1\n",
    );
    let long = "d".repeat(60);
    write(&dir.join(format!("{long}/{long}/deep.txt")), b"long path\n");
    fs::create_dir_all(dir.join("empty")).unwrap();
    symlink("src/main.py", dir.join("link")).unwrap();
    for f in [
        "Dockerfile",
        ".dockerignore",
        "src/main.py",
        "src/lib/util.py",
        "debug.log",
    ] {
        fs::set_permissions(dir.join(f), fs::Permissions::from_mode(file_mode)).unwrap();
    }
    fs::set_permissions(
        dir.join("run.sh"),
        fs::Permissions::from_mode(file_mode | 0o100),
    )
    .unwrap();
    for d in ["src", "src/lib", "empty", "node_modules"] {
        fs::set_permissions(dir.join(d), fs::Permissions::from_mode(dir_mode)).unwrap();
    }
    for f in ["Dockerfile", "src/main.py", "run.sh"] {
        set_mtime(&dir.join(f), mtime);
    }
}

async fn archive(
    snap: &ContextSnapshot,
    extra: Vec<ExtraFile>,
    gzip: bool,
) -> Result<Vec<u8>, std::io::Error> {
    let mut stream = Box::pin(tar_stream(snap, extra, gzip));
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test]
async fn same_tree_gives_same_hash_and_identical_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("one"), tmp.path().join("elsewhere/two"));
    project(&a, 0o644, 0o755, SystemTime::now());
    // Another checkout: umask 077, years-old mtimes, different location.
    project(
        &b,
        0o600,
        0o700,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
    );
    let sa = snapshot(&request(&a, &tmp.path().join("cache-a"))).unwrap();
    let sb = snapshot(&request(&b, &tmp.path().join("cache-b"))).unwrap();
    assert_eq!(sa.hash, sb.hash);
    assert_eq!(sa.hash.len(), 64);
    assert!(sa
        .hash
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(sa.entries, sb.entries);
    assert!(!paths(&sa)
        .iter()
        .any(|p| p.starts_with("node_modules") || p.ends_with(".log")));
    assert!(paths(&sa).contains(&"empty".to_string()));
    for gzip in [false, true] {
        let ta = archive(&sa, vec![], gzip).await.unwrap();
        let tb = archive(&sb, vec![], gzip).await.unwrap();
        assert!(ta == tb, "archives differ (gzip={gzip})");
    }
    // A warm re-hash (stat cache filled) gives the same answer.
    let again = snapshot(&request(&a, &tmp.path().join("cache-a"))).unwrap();
    assert_eq!(again.hash, sa.hash);
}

#[tokio::test]
async fn archive_has_normalised_headers_and_exact_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    project(&dir, 0o664, 0o775, SystemTime::now());
    let snap = snapshot(&request(&dir, &tmp.path().join("cache"))).unwrap();
    let extra = vec![ExtraFile {
        path: "zz/generated.Dockerfile".into(),
        contents: b"FROM scratch\n".to_vec(),
        exec: false,
    }];
    let bytes = archive(&snap, extra, true).await.unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut seen = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let h = entry.header().clone();
        assert_eq!(h.mtime().unwrap(), 0, "{path}");
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.username().unwrap().unwrap_or(""), "");
        let mode = h.mode().unwrap();
        match h.entry_type() {
            tar::EntryType::Directory => assert_eq!(mode, 0o755, "{path}"),
            tar::EntryType::Symlink => {
                assert_eq!(
                    entry.link_name().unwrap().unwrap().to_str(),
                    Some("src/main.py")
                );
            }
            _ => {
                let mut body = Vec::new();
                entry.read_to_end(&mut body).unwrap();
                if path == "zz/generated.Dockerfile" {
                    assert_eq!(body, b"FROM scratch\n");
                } else {
                    assert_eq!(body, fs::read(dir.join(&path)).unwrap(), "{path}");
                }
                assert_eq!(mode, if path == "run.sh" { 0o755 } else { 0o644 }, "{path}");
            }
        }
        seen.push(path);
    }
    let mut expected = paths(&snap);
    expected.push("zz/generated.Dockerfile".into());
    assert_eq!(
        seen, expected,
        "archive holds exactly the entries, in order"
    );
}

#[tokio::test]
async fn archive_fails_if_a_file_changed_after_hashing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    project(&dir, 0o644, 0o755, SystemTime::now());
    let snap = snapshot(&request(&dir, &tmp.path().join("cache"))).unwrap();
    fs::write(dir.join("src/main.py"), b"print('HI')\n").unwrap();
    let err = archive(&snap, vec![], false).await.unwrap_err();
    assert!(err.to_string().contains("main.py"), "{err}");
    fs::write(dir.join("src/main.py"), b"short").unwrap();
    let err = archive(&snap, vec![], false).await.unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
}

#[test]
fn same_size_rewrite_with_restored_mtime_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    let cache = tmp.path().join("cache");
    let old = SystemTime::now() - Duration::from_secs(3600);
    project(&dir, 0o644, 0o755, old);
    settle();
    let first = snapshot(&request(&dir, &cache)).unwrap();
    assert_eq!(cached_files(&cache), 1, "digests were cached");
    let warm = snapshot(&request(&dir, &cache)).unwrap();
    assert_eq!(first.hash, warm.hash);
    // Same size, different bytes, mtime put back: only ctime/content tell.
    fs::write(dir.join("src/main.py"), b"print('HI')\n").unwrap();
    set_mtime(&dir.join("src/main.py"), old);
    let after = snapshot(&request(&dir, &cache)).unwrap();
    assert_ne!(after.hash, first.hash);
    let cold = snapshot(&request(&dir, &tmp.path().join("fresh-cache"))).unwrap();
    assert_eq!(after.hash, cold.hash);
}

#[test]
fn edit_in_the_same_second_as_the_previous_hash_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    let cache = tmp.path().join("cache");
    project(&dir, 0o644, 0o755, SystemTime::now());
    let file = dir.join("src/main.py");
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let first = snapshot(&request(&dir, &cache)).unwrap();
    fs::write(&file, b"print('HI')\n").unwrap();
    set_mtime(&file, mtime);
    let second = snapshot(&request(&dir, &cache)).unwrap();
    assert_ne!(first.hash, second.hash);
    // And once more, as the racy entry is now in play.
    fs::write(&file, b"print('ho')\n").unwrap();
    set_mtime(&file, mtime);
    let third = snapshot(&request(&dir, &cache)).unwrap();
    assert_ne!(second.hash, third.hash);
    let cold = snapshot(&request(&dir, &tmp.path().join("fresh"))).unwrap();
    assert_eq!(third.hash, cold.hash);
}

#[test]
fn corrupted_cache_is_ignored_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    let cache = tmp.path().join("cache");
    project(
        &dir,
        0o644,
        0o755,
        SystemTime::now() - Duration::from_secs(60),
    );
    settle();
    let good = snapshot(&request(&dir, &cache)).unwrap();
    let stat_dir = cache.join("stat");
    let files: Vec<PathBuf> = fs::read_dir(&stat_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let mut bytes = fs::read(&files[0]).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 3..n / 2] {
        *b = 0x5a;
    }
    fs::write(&files[0], &bytes).unwrap();
    assert_eq!(snapshot(&request(&dir, &cache)).unwrap().hash, good.hash);
    fs::write(&files[0], b"").unwrap();
    assert_eq!(snapshot(&request(&dir, &cache)).unwrap().hash, good.hash);
    assert!(
        fs::metadata(&files[0]).unwrap().len() > 100,
        "cache rewritten"
    );
}

#[test]
fn concurrent_snapshots_share_the_cache_safely() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    let cache = tmp.path().join("cache");
    project(
        &dir,
        0o644,
        0o755,
        SystemTime::now() - Duration::from_secs(60),
    );
    for i in 0..200 {
        write(&dir.join(format!("many/f{i}")), format!("{i}").as_bytes());
        set_mtime(
            &dir.join(format!("many/f{i}")),
            SystemTime::now() - Duration::from_secs(60),
        );
    }
    settle();
    let expected = snapshot(&request(&dir, &tmp.path().join("solo")))
        .unwrap()
        .hash;
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(snapshot(&request(&dir, &cache)).unwrap().hash, expected);
                }
            });
        }
    });
    let leftovers: Vec<_> = fs::read_dir(cache.join("stat"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn links_are_recorded_not_followed_and_specials_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    write(&dir.join("Dockerfile"), b"FROM scratch\n");
    write(&tmp.path().join("outside/secret"), b"s");
    symlink(tmp.path().join("outside"), dir.join("out")).unwrap();
    symlink("missing", dir.join("dangling")).unwrap();
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let snap = snapshot(&request(&dir, &tmp.path().join("cache"))).unwrap();
    assert_eq!(paths(&snap), vec!["Dockerfile", "dangling", "out"]);
    assert_eq!(
        snap.entries[2].kind,
        EntryKind::Symlink {
            target: tmp.path().join("outside").to_string_lossy().into_owned()
        }
    );
    assert_eq!(snap.files, 1);
}

#[test]
fn dockerfile_location_and_its_own_ignore_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    let cache = tmp.path().join("cache");
    write(&dir.join("a"), b"a");
    write(&dir.join("b"), b"b");
    write(&dir.join(".dockerignore"), b"a\n");
    write(&dir.join("docker/app.Dockerfile"), b"FROM scratch\n");
    let mut req = request(&dir, &cache);
    req.dockerfile = DockerfileSource::Path(dir.join("docker/app.Dockerfile"));
    let snap = snapshot(&req).unwrap();
    assert_eq!(
        snap.dockerfile_in_context.as_deref(),
        Some("docker/app.Dockerfile")
    );
    assert!(!paths(&snap).contains(&"a".to_string()));
    // `<Dockerfile>.dockerignore` next to the Dockerfile replaces .dockerignore.
    write(
        &dir.join("docker/app.Dockerfile.dockerignore"),
        b"b\ndocker\n",
    );
    let snap = snapshot(&req).unwrap();
    assert_eq!(paths(&snap), vec![".dockerignore", "a"]);
    assert_eq!(
        snap.dockerfile_in_context, None,
        "excluded Dockerfile is not in the context"
    );
    // The Dockerfile's content counts even when it is excluded or outside.
    let before = snap.hash.clone();
    write(
        &dir.join("docker/app.Dockerfile"),
        b"FROM scratch\nCOPY . /\n",
    );
    assert_ne!(snapshot(&req).unwrap().hash, before);
    write(&tmp.path().join("elsewhere/Dockerfile"), b"FROM scratch\n");
    req.dockerfile = DockerfileSource::Path(tmp.path().join("elsewhere/Dockerfile"));
    let outside = snapshot(&req).unwrap();
    assert_eq!(outside.dockerfile_in_context, None);
    req.dockerfile = DockerfileSource::Inline("FROM scratch\n".into());
    let inline = snapshot(&req).unwrap();
    assert_eq!(
        inline.hash, outside.hash,
        "same content, same hash, wherever it lives"
    );
    assert_eq!(inline.dockerfile_contents.as_slice(), b"FROM scratch\n");
}

#[test]
fn extra_inputs_enter_the_hash_in_any_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    project(&dir, 0o644, 0o755, SystemTime::now());
    let mut req = request(&dir, &tmp.path().join("cache"));
    let plain = snapshot(&req).unwrap().hash;
    req.extra_inputs = vec![
        ("platform".into(), "linux/amd64".into()),
        ("buildArg:X".into(), "1".into()),
    ];
    let with = snapshot(&req).unwrap().hash;
    assert_ne!(plain, with);
    req.extra_inputs.reverse();
    assert_eq!(snapshot(&req).unwrap().hash, with);
    req.extra_inputs[0].1 = "2".into();
    assert_ne!(snapshot(&req).unwrap().hash, with);
}

#[test]
fn explain_lists_changes_and_missing_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    let cache = tmp.path().join("cache");
    project(&dir, 0o644, 0o755, SystemTime::now());
    let mut req = request(&dir, &cache);
    let old = snapshot(&req).unwrap();
    fs::write(dir.join("src/main.py"), b"print('changed')\n").unwrap();
    fs::remove_file(dir.join("run.sh")).unwrap();
    write(&dir.join("src/new.py"), b"new\n");
    write(&dir.join("node_modules/ignored.js"), b"ignored\n");
    fs::write(dir.join("Dockerfile"), b"FROM scratch\nCOPY . /srv/\n").unwrap();
    req.extra_inputs = vec![("platform".into(), "linux/arm64".into())];
    let new = snapshot(&req).unwrap();
    match explain(&old.hash, &new, Some(&cache)) {
        Explanation::Changes {
            added,
            removed,
            changed,
        } => {
            assert_eq!(added, vec!["src/new.py"]);
            assert_eq!(removed, vec!["run.sh"]);
            assert_eq!(
                changed,
                vec![
                    "Dockerfile",
                    "src/main.py",
                    "(dockerfile)",
                    "(input) platform"
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        explain(&"0".repeat(64), &new, Some(&cache)),
        Explanation::OldManifestMissing
    );
    assert_eq!(
        explain("../../etc/passwd", &new, Some(&cache)),
        Explanation::OldManifestMissing
    );
    assert_eq!(
        explain(&old.hash, &new, Some(&tmp.path().join("other-cache"))),
        Explanation::OldManifestMissing
    );
}

#[test]
fn errors_name_the_input_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let missing = tmp.path().join("nope");
    let err = snapshot(&request(&missing, &cache)).unwrap_err();
    assert!(matches!(err, ContextError::ContextDir { .. }));
    assert!(err.to_string().contains("nope"), "{err}");

    let dir = tmp.path().join("ctx");
    write(&dir.join("f"), b"f");
    let err = snapshot(&request(&dir, &cache)).unwrap_err();
    assert!(matches!(err, ContextError::Dockerfile { .. }), "{err}");
    assert!(err.to_string().contains("Dockerfile"), "{err}");

    write(&dir.join("Dockerfile"), b"FROM scratch\n");
    write(&dir.join(".dockerignore"), b"ok\n[unclosed\n");
    let err = snapshot(&request(&dir, &cache)).unwrap_err();
    assert!(err.to_string().contains("[unclosed"), "{err}");
    assert!(err.to_string().contains(".dockerignore"), "{err}");
}

/// Root reads anything, so the unreadable-file check runs as `nobody` in a child.
#[test]
fn unreadable_file_is_an_error_naming_it() {
    if let Ok(dir) = std::env::var("IMAGEBUILD_TEST_UNREADABLE_DIR") {
        let dir = PathBuf::from(dir);
        let err = snapshot(&request(&dir.join("ctx"), &dir.join("cache"))).unwrap_err();
        assert!(matches!(err, ContextError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("secret.txt"), "{err}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(&dir.join("ctx/Dockerfile"), b"FROM scratch\n");
    write(&dir.join("ctx/secret.txt"), b"s");
    fs::create_dir_all(dir.join("cache")).unwrap();
    fs::set_permissions(
        dir.join("ctx/secret.txt"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.join("cache"), fs::Permissions::from_mode(0o777)).unwrap();
    if unsafe { libc::geteuid() } != 0 {
        let err = snapshot(&request(&dir.join("ctx"), &dir.join("cache"))).unwrap_err();
        assert!(err.to_string().contains("secret.txt"), "{err}");
        return;
    }
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unreadable_file_is_an_error_naming_it",
            "--nocapture",
        ])
        .env("IMAGEBUILD_TEST_UNREADABLE_DIR", dir)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child as nobody failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn excluded_unreadable_directory_is_not_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    write(&dir.join("Dockerfile"), b"FROM scratch\n");
    write(&dir.join(".dockerignore"), b"private\n");
    write(&dir.join("private/x"), b"x");
    fs::set_permissions(dir.join("private"), fs::Permissions::from_mode(0o000)).unwrap();
    let snap = snapshot(&request(&dir, &tmp.path().join("cache"))).unwrap();
    fs::set_permissions(dir.join("private"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(paths(&snap), vec![".dockerignore", "Dockerfile"]);
}

#[test]
fn buildkit_dialect_differs_where_docker_20_10_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    write(&dir.join("Dockerfile"), b"FROM scratch\n");
    write(&dir.join(".dockerignore"), b"*\n!**/keep\n");
    write(&dir.join("a/keep"), b"k");
    write(&dir.join("a/other"), b"o");
    let req = request(&dir, &tmp.path().join("cache"));
    let docker20 = snapshot_with(
        &req,
        &SnapshotOptions {
            dialect: Dialect::Docker20,
        },
    )
    .unwrap();
    assert!(paths(&docker20).is_empty());
    let bk = snapshot_with(
        &req,
        &SnapshotOptions {
            dialect: Dialect::BuildKit,
        },
    )
    .unwrap();
    assert_eq!(paths(&bk), vec!["a", "a/keep"]);
    // BuildKit's rules are the default.
    assert_eq!(paths(&snapshot(&req).unwrap()), paths(&bk));
}

#[test]
fn cli_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    project(&dir, 0o644, 0o755, SystemTime::now());
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let d = dir.to_str().unwrap();
    std::env::set_var("IMAGEBUILD_CACHE_DIR", tmp.path().join("cache"));
    assert_eq!(imagebuild::plan::run_cli(&s(&["context", d, "--list"])), 0);
    let snap = snapshot(&request(&dir, &tmp.path().join("cache"))).unwrap();
    assert_eq!(
        imagebuild::plan::run_cli(&s(&["context", d, "--explain", &snap.hash])),
        0
    );
    assert_eq!(
        imagebuild::plan::run_cli(&s(&[
            "context",
            d,
            "--dockerfile",
            &format!("{d}/Dockerfile")
        ])),
        0
    );
    assert_eq!(imagebuild::plan::run_cli(&s(&["context"])), 2);
    assert_eq!(
        imagebuild::plan::run_cli(&s(&["context", d, "--frobnicate"])),
        2
    );
    assert_eq!(
        imagebuild::plan::run_cli(&s(&["context", "/nonexistent/dir"])),
        1
    );
    assert_eq!(imagebuild::plan::run_cli(&s(&["context", "--help"])), 0);
}

#[tokio::test]
async fn async_snapshot_matches_blocking_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    project(&dir, 0o644, 0o755, SystemTime::now());
    let req = request(&dir, &tmp.path().join("cache"));
    let blocking = snapshot(&req).unwrap();
    let from_async = imagebuild::context::snapshot_async(req).await.unwrap();
    assert_eq!(blocking.hash, from_async.hash);
    assert_eq!(blocking.files, 6);
}

#[tokio::test]
async fn dropping_the_archive_stream_stops_the_producer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ctx");
    write(&dir.join("Dockerfile"), b"FROM scratch\n");
    write(&dir.join("big"), &vec![1u8; 8 << 20]);
    let snap = snapshot(&request(&dir, &tmp.path().join("cache"))).unwrap();
    let mut stream = Box::pin(tar_stream(&snap, vec![], false));
    let first = stream.next().await.unwrap().unwrap();
    assert!(
        !first.is_empty() && first.len() <= 64 * 1024,
        "bounded chunks"
    );
    drop(stream);
    // The producer notices on its next send; nothing to join, but it must not panic.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

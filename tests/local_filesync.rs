//! The context travels over the BuildKit session (FileSync) as the docker CLI sends it: what COPY
//! sees, modes and mtimes equal the CLI's; a rebuild sends only changed files; cancel and changed
//! files end the build cleanly.

mod local_common;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use imagebuild::context::{ContextRequest, DockerfileSource};
use imagebuild::local::{ContextSnapshot, LocalError, ProgressEvent, Published};
use local_common::*;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// One path of an image's filesystem, read from the image's top layer on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime_ns: i64,
    link: String,
    sha256: String,
    /// First path of the same inode (a hardlink), in walk order.
    same_inode_as: Option<String>,
}

/// The files below `/ctx` of `image`, exported by the docker CLI (`FROM image` with
/// `--output type=local`): unlike `docker export`/`save`, which round mtimes to whole seconds, the
/// local exporter writes what the image holds, on any daemon and storage driver.
fn image_files(image: &str) -> BTreeMap<String, Meta> {
    let work = tempfile::tempdir().unwrap();
    let df = work.path().join("Dockerfile");
    std::fs::write(&df, format!("FROM {image}\n")).unwrap();
    let out = work.path().join("out");
    let st = std::process::Command::new("/usr/bin/docker")
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-q", "-f"])
        .arg(&df)
        .arg("--output")
        .arg(format!("type=local,dest={}", out.display()))
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "export {image}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut files = BTreeMap::new();
    let mut inodes = BTreeMap::new();
    walk_meta(&out.join("ctx"), "", &mut files, &mut inodes);
    files
}

fn walk_meta(
    root: &Path,
    rel: &str,
    out: &mut BTreeMap<String, Meta>,
    inodes: &mut BTreeMap<u64, String>,
) {
    use std::os::unix::fs::MetadataExt;
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let abs = root.join(&path);
        let md = std::fs::symlink_metadata(&abs).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "link"
        } else {
            "file"
        };
        let mut meta = Meta {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            size: if ft.is_dir() { 0 } else { md.size() },
            // A directory's mtime in the layer is when BuildKit's copy wrote into it, for the
            // CLI's build as for ours: not a property of the transfer.
            mtime_ns: if ft.is_dir() {
                0
            } else {
                md.mtime() * 1_000_000_000 + md.mtime_nsec()
            },
            link: String::new(),
            sha256: String::new(),
            same_inode_as: None,
        };
        if ft.is_symlink() {
            meta.link = std::fs::read_link(&abs)
                .unwrap()
                .to_string_lossy()
                .into_owned();
        } else if ft.is_file() {
            meta.sha256 = hex::encode(Sha256::digest(std::fs::read(&abs).unwrap()));
            if md.nlink() > 1 {
                meta.same_inode_as = inodes.get(&md.ino()).cloned();
                inodes.entry(md.ino()).or_insert_with(|| path.clone());
            }
        }
        out.insert(path.clone(), meta);
        if ft.is_dir() {
            walk_meta(root, &path, out, inodes);
        }
    }
}

/// Builds with Debian's docker CLI (BuildKit) and returns the image tag.
fn cli_build(context: &Path, dockerfile: &Path) -> String {
    let tag = format!(
        "imagebuild-itest/cli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let out = std::process::Command::new("/usr/bin/docker")
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-q", "--no-cache", "-t", &tag, "-f"])
        .arg(dockerfile)
        .arg(context)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag
}

fn snap_with(root: &Path, dockerfile: DockerfileSource) -> ContextSnapshot {
    imagebuild::context::snapshot(&ContextRequest {
        cache_dir: Some(std::env::temp_dir().join("imagebuild-local-tests-cache")),
        ..ContextRequest::new(root.to_path_buf(), dockerfile)
    })
    .unwrap_or_else(|e| panic!("snapshot of {}: {e}", root.display()))
}

/// Builds `snap` with the engine (no push, no cache: the CLI's build of the same text must not be
/// reused for ours) and returns the local image reference and result.
async fn engine_build(snap: ContextSnapshot) -> (String, Published) {
    let mut build = build_spec(snap);
    build.no_cache = true;
    let mut spec = publish_spec(build, unique_repo("filesync"));
    spec.push = false;
    let image = spec.repository.with_tag(&spec.hash_tag);
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    (
        image,
        r.unwrap_or_else(|e| panic!("engine build failed: {e}")),
    )
}

fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let t = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

/// A context with the metadata that matters: exec and setuid bits, odd mtimes, an empty
/// directory, symlinks (one into a directory), a hardlink, ignored files.
fn rich_context() -> tempfile::TempDir {
    let dir = write_tree(&[
        ("a.txt", "alpha\n"),
        ("run.sh", "#!/bin/sh\necho hi\n"),
        ("src/app.py", "print('app')\n"),
        ("src/lib/util.py", "x = 1\n"),
        ("real/sub/data.bin", "0123456789"),
        ("skip.log", "log\n"),
        ("node_modules/m/index.js", "js\n"),
    ]);
    let p = dir.path();
    std::fs::set_permissions(p.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(p.join("a.txt"), std::fs::Permissions::from_mode(0o4640)).unwrap();
    std::fs::create_dir(p.join("empty")).unwrap();
    symlink("real/sub", p.join("link")).unwrap();
    symlink("a.txt", p.join("a-link")).unwrap();
    std::fs::hard_link(p.join("src/app.py"), p.join("src/app-hard.py")).unwrap();
    set_mtime(&p.join("a.txt"), 1_234_567_890, 123_456_789);
    set_mtime(&p.join("src/lib/util.py"), 1_000_000_000, 0);
    set_mtime(&p.join("src/lib"), 1_500_000_000, 42);
    dir
}

/// Compares our image's `/ctx` with the CLI's for the same context and Dockerfile.
async fn assert_same_as_cli(what: &str, ctx: &Path, dockerfile: &Path, ours: DockerfileSource) {
    let cli = cli_build(ctx, dockerfile);
    let theirs = image_files(&cli);
    let (image, published) = engine_build(snap_with(ctx, ours)).await;
    let mine = image_files(&image);
    let _ = std::process::Command::new("/usr/bin/docker")
        .args(["rmi", "-f", &cli, &image])
        .output();
    eprintln!("{what}: {} paths; requests:", mine.len());
    for t in &published.transfers {
        eprintln!(
            "  dir={:?} include={:?} exclude={:?} follow={:?} listed={} sent={:?} bytes={}",
            t.dir,
            t.filter.include_patterns,
            t.filter.exclude_patterns,
            t.filter.follow_paths,
            t.entries_listed,
            t.files_sent,
            t.bytes_sent
        );
    }
    assert!(!theirs.is_empty(), "{what}: the CLI's image has no /ctx");
    let diff: Vec<String> = theirs
        .keys()
        .chain(mine.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| theirs.get(*k) != mine.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  cli:  {:?}\n  ours: {:?}",
                theirs.get(k),
                mine.get(k)
            )
        })
        .collect();
    assert!(
        diff.is_empty(),
        "{what}: engine vs docker CLI:\n{}",
        diff.join("\n")
    );
}

#[tokio::test]
async fn copied_files_equal_the_docker_clis() {
    require_services();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let copy_all = format!("FROM scratch\nCOPY . /ctx/\n# {id}\n");

    // Dockerfile in the context, .dockerignore applied (and ignoring itself).
    let dir = rich_context();
    std::fs::write(dir.path().join("Dockerfile"), &copy_all).unwrap();
    std::fs::write(
        dir.path().join(".dockerignore"),
        "*.log\nnode_modules\n.dockerignore\n",
    )
    .unwrap();
    let df = dir.path().join("Dockerfile");
    assert_same_as_cli(
        "in context",
        dir.path(),
        &df,
        DockerfileSource::Path(df.clone()),
    )
    .await;

    // The Dockerfile itself is .dockerignore'd: COPY . must not see it.
    std::fs::write(
        dir.path().join(".dockerignore"),
        "*.log\nnode_modules\nDockerfile\n",
    )
    .unwrap();
    assert_same_as_cli(
        "ignored Dockerfile",
        dir.path(),
        &df,
        DockerfileSource::Path(df.clone()),
    )
    .await;

    // Dockerfile outside the context, with its own <name>.dockerignore next to it.
    let outside = tempfile::tempdir().unwrap();
    let odf = outside.path().join("app.Dockerfile");
    std::fs::write(&odf, &copy_all).unwrap();
    std::fs::write(
        outside.path().join("app.Dockerfile.dockerignore"),
        "src/lib\n*.log\n",
    )
    .unwrap();
    assert_same_as_cli(
        "outside + own ignore",
        dir.path(),
        &odf,
        DockerfileSource::Path(odf.clone()),
    )
    .await;

    // Inline text (the CLI gets the same text from a file outside the context).
    let inline_df = outside.path().join("Dockerfile");
    std::fs::write(&inline_df, &copy_all).unwrap();
    let inline = DockerfileSource::Inline(copy_all.clone());
    assert_same_as_cli("inline", dir.path(), &inline_df, inline).await;

    // Named sources only, one through a symlink: BuildKit asks for just those (followpaths).
    let some = format!("FROM scratch\nCOPY link/data.bin a.txt src /ctx/\n# {id}\n");
    let sdf = outside.path().join("some.Dockerfile");
    std::fs::write(&sdf, some).unwrap();
    assert_same_as_cli(
        "named paths",
        dir.path(),
        &sdf,
        DockerfileSource::Path(sdf.clone()),
    )
    .await;
}

#[tokio::test]
async fn hardlinks_survive_a_second_transfer() {
    require_services();
    let dir = write_tree(&[("src/app.py", "app\n"), ("a.txt", "1")]);
    std::fs::hard_link(
        dir.path().join("src/app.py"),
        dir.path().join("src/app-hard.py"),
    )
    .unwrap();
    let df = format!("FROM scratch\nCOPY . /ctx/\n# {}\n", uuid::Uuid::new_v4());
    for round in ["1", "22"] {
        std::fs::write(dir.path().join("a.txt"), round).unwrap();
        let (image, published) =
            engine_build(snap_with(dir.path(), DockerfileSource::Inline(df.clone()))).await;
        let files = image_files(&image);
        let _ = std::process::Command::new("/usr/bin/docker")
            .args(["rmi", "-f", &image])
            .output();
        let names: Vec<&String> = files.keys().collect();
        eprintln!(
            "round {round}: {names:?} {:?}",
            published
                .transfers
                .iter()
                .map(|t| &t.files_sent)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            names,
            ["a.txt", "src", "src/app-hard.py", "src/app.py"],
            "round {round}"
        );
        assert_eq!(
            files["src/app.py"].same_inode_as.as_deref(),
            Some("src/app-hard.py")
        );
    }
}

/// The requests for the build context proper (not the `[".dockerignore"]` probe).
fn context_sends(p: &Published) -> Vec<String> {
    p.transfers
        .iter()
        .filter(|t| t.dir == "context" && t.filter.follow_paths != [".dockerignore"])
        .flat_map(|t| t.files_sent.clone())
        .collect()
}

#[tokio::test]
async fn a_rebuild_sends_only_the_changed_file() {
    require_services();
    let big = "x".repeat(200_000);
    let dir = write_tree(&[
        ("a.txt", big.as_str()),
        ("b.txt", "before"),
        ("src/c.py", big.as_str()),
        ("src/d/e.py", "e"),
    ]);
    let df = format!("FROM scratch\nCOPY . /ctx/\n# {}\n", uuid::Uuid::new_v4());
    let inline = || DockerfileSource::Inline(df.clone());
    let (first_image, first) = engine_build(snap_with(dir.path(), inline())).await;
    let mut sent = context_sends(&first);
    sent.sort();
    assert_eq!(sent, ["a.txt", "b.txt", "src/c.py", "src/d/e.py"]);
    assert!(
        first.context_bytes_sent >= 400_000,
        "{}",
        first.context_bytes_sent
    );

    std::fs::write(dir.path().join("b.txt"), "after, and longer").unwrap();
    let snap = snap_with(dir.path(), inline());
    let mut spec = publish_spec(build_spec(snap), unique_repo("filesync"));
    spec.push = false;
    let image = spec.repository.with_tag(&spec.hash_tag);
    let (r, events) = publish(&engine(1), spec, CancellationToken::new()).await;
    let second = r.unwrap_or_else(|e| panic!("second build: {e}"));
    let _ = std::process::Command::new("/usr/bin/docker")
        .args(["rmi", "-f", &first_image, &image])
        .output();
    assert_eq!(context_sends(&second), ["b.txt"], "{:?}", second.transfers);
    // Only what BuildKit asked for is counted: the changed file (and, on daemons that always
    // re-read the Dockerfile directory, the Dockerfile).
    let dockerfile_bytes: u64 = second
        .transfers
        .iter()
        .filter(|t| t.dir == "dockerfile")
        .map(|t| t.bytes_sent)
        .sum();
    assert_eq!(second.context_bytes_sent, 17 + dockerfile_bytes);
    let last_sent = events.iter().rev().find_map(|(_, e)| match e {
        ProgressEvent::Sent { bytes } => Some(*bytes),
        _ => None,
    });
    assert_eq!(
        last_sent,
        Some(second.context_bytes_sent),
        "Sent events report the total"
    );
}

#[tokio::test]
async fn a_file_changed_after_the_snapshot_fails_the_build_naming_it() {
    require_services();
    let df = format!("FROM scratch\nCOPY . /ctx/\n# {}\n", uuid::Uuid::new_v4());
    // Same size, other bytes: found while the file is streamed.
    let dir = write_tree(&[("keep.txt", "k"), ("edited.txt", "original")]);
    let snap = snap_with(dir.path(), DockerfileSource::Inline(df.clone()));
    std::fs::write(dir.path().join("edited.txt"), "ORIGINAL").unwrap();
    let mut spec = publish_spec(build_spec(snap), unique_repo("changed"));
    spec.push = false;
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    let e = r.expect_err("a changed file must fail the build");
    let msg = e.to_string();
    assert!(
        matches!(&e, LocalError::ContextChanged { path, .. } if path.ends_with("edited.txt")),
        "{e:?}"
    );
    assert!(
        msg.contains("changed since the hash was computed") && msg.contains("run again"),
        "{msg}"
    );

    // A file that vanished: found when its metadata is read.
    let dir = write_tree(&[("keep.txt", "k"), ("gone.txt", "soon")]);
    let snap = snap_with(dir.path(), DockerfileSource::Inline(df));
    std::fs::remove_file(dir.path().join("gone.txt")).unwrap();
    let mut spec = publish_spec(build_spec(snap), unique_repo("changed"));
    spec.push = false;
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    let e = r.expect_err("a vanished file must fail the build");
    assert!(
        matches!(&e, LocalError::ContextChanged { path, .. } if path.ends_with("gone.txt")),
        "{e:?}"
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_the_transfer_stops_cleanly() {
    require_services();
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9E37_79B9u32;
    for i in 0..24 {
        let body: Vec<u8> = (0..4 << 20)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        std::fs::write(dir.path().join(format!("blob{i:02}")), body).unwrap();
    }
    let df = format!("FROM scratch\nCOPY . /ctx/\n# {}\n", uuid::Uuid::new_v4());
    let eng = engine(1);
    let fds_before = open_fds();
    let snap = snap_with(dir.path(), DockerfileSource::Inline(df.clone()));
    let mut spec = publish_spec(build_spec(snap), unique_repo("cancelxfer"));
    spec.push = false;
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let c2 = cancel.clone();
    let watcher = tokio::spawn(async move {
        let mut at = None;
        while let Some(e) = rx.recv().await {
            if let (ProgressEvent::Sent { bytes }, None) = (&e, at) {
                at = Some(*bytes);
                c2.cancel();
            }
        }
        at
    });
    let t0 = std::time::Instant::now();
    let r = eng.publish(spec, tx, cancel).await;
    let cancelled_at = watcher
        .await
        .unwrap()
        .expect("the transfer reported progress");
    assert!(matches!(r, Err(LocalError::Cancelled)), "{r:?}");
    assert!(
        cancelled_at < 96 << 20,
        "cancelled only after everything was sent"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "cancel took {:?}",
        t0.elapsed()
    );
    // Teardown is asynchronous and the other tests of this binary open files of their own
    // meanwhile: wait for the count to settle rather than sampling it once.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while open_fds() > fds_before + 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        open_fds() <= fds_before + 2,
        "open files {} -> {}",
        fds_before,
        open_fds()
    );

    // The daemon is left in a usable state: the same context builds, whole, right after.
    let (image, p) = engine_build(snap_with(dir.path(), DockerfileSource::Inline(df))).await;
    let files = image_files(&image);
    let _ = std::process::Command::new("/usr/bin/docker")
        .args(["rmi", "-f", &image])
        .output();
    assert_eq!(files.len(), 24, "{:?}", files.keys());
    assert!(files.values().all(|m| m.size == 4 << 20));
    assert!(p.context_bytes_sent > 0);
}

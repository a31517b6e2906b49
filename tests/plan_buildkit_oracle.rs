//! Oracle for the hash's read set: for hundreds of generated Dockerfile/context cases, every
//! file a real BuildKit build copies out of the context (exported with `--output type=local`,
//! identified by its content) must be in the set our plan hashes. Zero misses allowed. Also:
//! a source BuildKit accepts must never be refused by our Check, and when our engine builds the
//! same case over its own session, the self-check (what BuildKit asked for vs the hash) finds
//! nothing.
//!
//! Needs dockerd with BuildKit and `imagebuild-base/busybox:latest`; fails loudly otherwise.
//! On Docker 25+ the cases also use heredocs, `COPY --exclude` and a named local context,
//! built with buildx (`--build-context`; IMAGEBUILD_BUILDX_DIR, from the set-up).
//! Knobs: IMAGEBUILD_READS_ORACLE_CASES (default 300), IMAGEBUILD_ORACLE_SEED.

#[path = "local_common/mod.rs"]
mod local_common;
mod reads_gen;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use imagebuild::context::{DockerfileSource, Entry, EntryKind};
use imagebuild::plan::{
    check_transfers, host_platform, make_plan, BaseLookup, NamedContextSource, Plan, PlanRequest,
};
use reads_gen::{gen_case_with, Case, Rng, BUSYBOX, MARK};
use tokio_util::sync::CancellationToken;

const DOCKER: &str = "/usr/bin/docker";

fn require_docker() {
    let out = Command::new(DOCKER)
        .args(["image", "inspect", "-f", "{{.Id}}", BUSYBOX])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {DOCKER}: {e}"));
    assert!(
        out.status.success(),
        "{BUSYBOX} missing or dockerd unreachable ({}): run scripts/setup.sh",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// buildx, which the set-up builds (scripts/build-buildx.sh): the docker CLI of Engine 20.10
/// cannot pass `--build-context`; buildx's `docker` driver builds on the same daemon.
fn buildx_plugin() -> PathBuf {
    let dir = std::env::var_os("IMAGEBUILD_BUILDX_DIR")
        .expect("IMAGEBUILD_BUILDX_DIR unset: source scripts/env.sh (run scripts/setup.sh)");
    let plugin = Path::new(&dir).join("docker-buildx");
    assert!(
        plugin.is_file(),
        "{} missing: run scripts/setup.sh (scripts/build-buildx.sh)",
        plugin.display()
    );
    plugin
}

/// `docker build`, or `docker buildx build --build-context` when the case has a named context
/// (through a private DOCKER_CONFIG whose cli-plugins hold buildx).
fn build_command(case: &Case, scratch: &Path) -> Command {
    let mut cmd = Command::new(DOCKER);
    let Some(named) = &case.named else {
        cmd.env("DOCKER_BUILDKIT", "1").arg("build");
        return cmd;
    };
    let config = scratch.join(format!("docker-config{}", case.id));
    std::fs::create_dir_all(config.join("cli-plugins")).unwrap();
    let link = config.join("cli-plugins/docker-buildx");
    if !link.exists() {
        std::os::unix::fs::symlink(buildx_plugin(), link).unwrap();
    }
    cmd.env("DOCKER_CONFIG", &config)
        .args(["buildx", "build", "--build-context"])
        .arg(format!("{}={}", named.name, named.dir.display()));
    cmd
}

/// The context paths a real build copied: read from the exported files' contents. Files of
/// the named context read as `@NAME/PATH`.
fn buildkit_reads(case: &Case, out: &Path, scratch: &Path) -> Result<BTreeSet<String>, String> {
    let mut cmd = build_command(case, scratch);
    cmd.args(["-q", "--output"])
        .arg(format!("type=local,dest={}", out.display()))
        .arg("-f")
        .arg(&case.dockerfile);
    for (k, v) in &case.build_args {
        cmd.arg("--build-arg").arg(format!("{k}={v}"));
    }
    if let Some(t) = &case.target {
        cmd.args(["--target", t]);
    }
    let done = cmd.arg(&case.ctx).output().map_err(|e| e.to_string())?;
    if !done.status.success() {
        return Err(String::from_utf8_lossy(&done.stderr).into_owned());
    }
    let mut reads = BTreeSet::new();
    collect(out, &mut reads);
    Ok(reads)
}

fn collect(dir: &Path, reads: &mut BTreeSet<String>) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for e in listing.flatten() {
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            collect(&e.path(), reads);
        } else if ty.is_file() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if let Some(rest) = text.strip_prefix(MARK) {
                reads.insert(rest.lines().next().unwrap_or_default().to_string());
            }
        }
    }
}

fn our_plan(case: &Case, cache: &Path) -> Result<Plan, String> {
    let req = PlanRequest {
        context: case.ctx.clone(),
        dockerfile: DockerfileSource::Path(case.dockerfile.clone()),
        build_args: case.build_args.clone(),
        target: case.target.clone(),
        platform: host_platform(),
        labels: Default::default(),
        contexts: case
            .named
            .iter()
            .map(|n| (n.name.clone(), NamedContextSource::Dir(n.dir.clone())))
            .collect(),
        cache_dir: Some(cache.to_path_buf()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(make_plan(&req, &BaseLookup::local_default(None)))
        .map_err(|e| e.to_string())
}

/// The files our hash covers: context paths as they are, named-context paths as `@NAME/PATH`.
fn used_files(plan: &Plan) -> BTreeSet<String> {
    let is_file = |e: &&Entry| matches!(e.kind, EntryKind::File { .. });
    let main = plan
        .snapshot
        .used
        .iter()
        .filter(is_file)
        .map(|e| e.path.clone());
    let named = plan.snapshot.named.iter().flat_map(|n| {
        n.used
            .iter()
            .filter(is_file)
            .map(|e| format!("@{}/{}", n.name, e.path))
    });
    main.chain(named).collect()
}

/// Builds the case with our engine over its session (no push) and runs the self-check.
fn our_build_self_check(case: &Case, plan: &Plan) -> Result<(), String> {
    let mut build = local_common::build_spec(plan.snapshot.clone());
    build.build_args = case.build_args.clone();
    build.target = case.target.clone();
    let mut spec = local_common::publish_spec(build, local_common::unique_repo("reads-oracle"));
    spec.push = false;
    let image = spec.repository.with_tag(&spec.hash_tag);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = local_common::engine(1);
    let (published, _) = rt.block_on(local_common::publish(
        &engine,
        spec,
        CancellationToken::new(),
    ));
    let _ = Command::new(DOCKER).args(["rmi", "-f", &image]).output();
    let published = published.map_err(|e| format!("our engine could not build it: {e}"))?;
    match check_transfers(&plan.snapshot, &published.transfers) {
        None => Ok(()),
        Some(miss) => Err(format!("self-check: {}", miss.describe())),
    }
}

enum Outcome {
    Agree,
    Miss(String),
    BothRefuse,
    WeAcceptTheyRefuse,
}

fn run_case(case: &Case, tmp: &Path) -> Outcome {
    let out = tmp.join(format!("out{}", case.id));
    let theirs = buildkit_reads(case, &out, tmp);
    let ours = our_plan(case, &tmp.join("cache"));
    match (theirs, ours) {
        (Ok(read), Ok(plan)) => {
            let used = used_files(&plan);
            let missed: Vec<&String> = read.iter().filter(|p| !used.contains(*p)).collect();
            if missed.is_empty() {
                match our_build_self_check(case, &plan) {
                    Ok(()) => Outcome::Agree,
                    Err(e) => Outcome::Miss(format!("case {}: {e}\n{}", case.id, case.text)),
                }
            } else {
                Outcome::Miss(format!(
                    "case {}: BuildKit read {missed:?}, not in our set {used:?}\n{}",
                    case.id, case.text
                ))
            }
        }
        (Ok(read), Err(e)) => Outcome::Miss(format!(
            "case {}: our plan refused ({e}) a build BuildKit accepted (read {read:?})\n{}",
            case.id, case.text
        )),
        (Err(_), Err(_)) => Outcome::BothRefuse,
        (Err(e), Ok(_)) => {
            if std::env::var_os("IMAGEBUILD_ORACLE_VERBOSE").is_some() {
                eprintln!(
                    "case {} refused by BuildKit only: {}\n{}",
                    case.id,
                    e.lines().rev().take(3).collect::<Vec<_>>().join(" | "),
                    case.text
                );
            }
            Outcome::WeAcceptTheyRefuse
        }
    }
}

/// True on Docker 23+ (BuildKit 0.10+ frontend: heredocs; `COPY --exclude` since Docker 25):
/// the cases then include them. Engine 20.10's frontend parses neither.
fn frontend_is_modern() -> bool {
    let out = Command::new(DOCKER)
        .args(["version", "-f", "{{.Server.Version}}"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {DOCKER}: {e}"));
    let version = String::from_utf8_lossy(&out.stdout);
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(0);
    major >= 25
}

/// True when the case's Dockerfile reads the named context `name`.
fn reads_named(case: &Case, name: &str) -> bool {
    case.text.contains(&format!("from={name} ")) || case.text.contains(&format!("from={name},"))
}

#[test]
fn every_path_buildkit_copies_is_hashed() {
    require_docker();
    let cases: usize = std::env::var("IMAGEBUILD_READS_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed = std::env::var("IMAGEBUILD_ORACLE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x005E_ED0F_u64);
    let tmp = tempfile::tempdir().unwrap();
    if std::env::var_os("IMAGEBUILD_ORACLE_VERBOSE").is_some() {
        eprintln!("reads oracle: cases under {}", tmp.path().display());
    }
    let modern = frontend_is_modern();
    let mut rng = Rng(seed);
    let generated: Vec<Case> = (0..cases)
        .map(|id| gen_case_with(&mut rng, id, tmp.path(), modern))
        .collect();
    let next = Mutex::new(generated.iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let Some(case) = next.lock().unwrap().next() else {
                    return;
                };
                let outcome = run_case(case, tmp.path());
                let named = case
                    .named
                    .as_ref()
                    .is_some_and(|n| reads_named(case, &n.name));
                results.lock().unwrap().push((named, outcome));
            });
        }
    });
    let results = results.into_inner().unwrap();
    if std::env::var_os("IMAGEBUILD_ORACLE_VERBOSE").is_some() {
        std::mem::forget(tmp); // keep the cases for a look
    }
    let count = |f: &dyn Fn(&(bool, Outcome)) -> bool| results.iter().filter(|r| f(r)).count();
    let agree = count(&|(_, o)| matches!(o, Outcome::Agree));
    let named_agree = count(&|(named, o)| *named && matches!(o, Outcome::Agree));
    let both = count(&|(_, o)| matches!(o, Outcome::BothRefuse));
    let lenient = count(&|(_, o)| matches!(o, Outcome::WeAcceptTheyRefuse));
    let misses: Vec<&String> = results
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Miss(m) => Some(m),
            _ => None,
        })
        .collect();
    eprintln!(
        "reads oracle: {} cases: {agree} built and covered, {both} refused by both, \
         {lenient} accepted by Check but failed in BuildKit, {} misses",
        results.len(),
        misses.len()
    );
    let modern_cases = generated
        .iter()
        .filter(|c| c.text.contains("<<EOF") || c.text.contains("--exclude="))
        .count();
    eprintln!(
        "reads oracle: {modern_cases} cases with heredocs or COPY --exclude, {named_agree} \
         built reading a named context (modern: {modern})"
    );
    assert!(
        !modern || modern_cases >= cases / 5,
        "only {modern_cases} of {cases} cases use heredocs or --exclude on a modern frontend"
    );
    assert!(
        !modern || named_agree >= cases / 10,
        "only {named_agree} of {cases} cases built reading a named context on a modern frontend"
    );
    assert!(
        agree >= cases * 2 / 5,
        "too few cases built ({agree} of {cases}): the generator no longer exercises the oracle"
    );
    assert!(
        misses.is_empty(),
        "{}",
        misses
            .iter()
            .take(5)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

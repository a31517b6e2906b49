//! Differential test of the hash: on generated Dockerfile/context cases, editing a file the
//! build cannot read leaves the image's hash unchanged, and editing one it reads changes it.

mod reads_gen;

use std::path::Path;

use imagebuild::context::{DockerfileSource, EntryKind};
use imagebuild::plan::{host_platform, make_plan, BaseLookup, Plan, PlanRequest};
use reads_gen::{gen_case, Case, Rng};

fn plan(case: &Case, cache: &Path) -> Result<Plan, String> {
    let req = PlanRequest {
        context: case.ctx.clone(),
        dockerfile: DockerfileSource::Path(case.dockerfile.clone()),
        build_args: case.build_args.clone(),
        target: case.target.clone(),
        platform: host_platform(),
        labels: Default::default(),
        contexts: Default::default(),
        cache_dir: Some(cache.to_path_buf()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(make_plan(&req, &BaseLookup::local_default(None)))
        .map_err(|e| e.to_string())
}

fn files_of(plan: &Plan, used: bool) -> Vec<String> {
    let set = if used {
        &plan.snapshot.used
    } else {
        &plan.snapshot.entries
    };
    // The Dockerfile and the ignore file decide the read set itself: not edited here.
    set.iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
        .filter(|e| e.path != "Dockerfile" && e.path != ".dockerignore")
        .map(|e| e.path.clone())
        .collect()
}

#[test]
fn edits_outside_the_read_set_keep_the_hash_and_edits_inside_change_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mut rng = Rng(0xD1FF);
    let (mut inside, mut outside) = (0, 0);
    for id in 0..200 {
        let case = gen_case(&mut rng, id, tmp.path());
        let Ok(before) = plan(&case, &cache) else {
            continue;
        };
        let used = files_of(&before, true);
        let unread: Vec<String> = files_of(&before, false)
            .into_iter()
            .filter(|p| !used.contains(p))
            .collect();
        let pick = |list: &[String], rng: &mut Rng| list[rng.below(list.len())].clone();
        let (target, expect_change) = match (used.is_empty(), unread.is_empty()) {
            (false, false) if rng.chance(50) => (pick(&used, &mut rng), true),
            (_, false) => (pick(&unread, &mut rng), false),
            (false, true) => (pick(&used, &mut rng), true),
            (true, true) => continue,
        };
        let path = case.ctx.join(&target);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("edited\n");
        std::fs::write(&path, text).unwrap();
        let after = plan(&case, &cache)
            .unwrap_or_else(|e| panic!("case {id}: the edited case no longer plans: {e}"));
        let changed = after.snapshot.hash != before.snapshot.hash;
        assert_eq!(
            changed, expect_change,
            "case {id}: editing {target} (read: {expect_change}) changed the hash: {changed}\n{}",
            case.text
        );
        if expect_change {
            inside += 1;
        } else {
            outside += 1;
        }
    }
    eprintln!("differential: {inside} edits inside the read set, {outside} outside");
    assert!(inside >= 30 && outside >= 30, "too few edits of each kind");
}

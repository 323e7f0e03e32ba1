#![allow(clippy::unwrap_used)] // tests fail loudly by design

use super::*;

const HYBRID_SELF: &str = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n4:memory:/sandbox/x\n\
                           2:cpuacct:/\n1:cpu:/\n0::/\n";

fn fake(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }
    dir
}

fn host<'a>(root: &'a Path, self_cgroup: &'a str, under_systemd: bool) -> Host<'a> {
    Host {
        root,
        self_cgroup,
        under_systemd,
        instance: "abc",
    }
}

#[test]
fn detects_pure_v2_hybrid_and_none() {
    let v2 = fake(&["cgroup.controllers", "cgroup.procs"]);
    assert_eq!(
        detect(&host(v2.path(), "0::/user.slice/session-1.scope\n", false)),
        CgroupMode::V2 {
            base: v2.path().join("jobvisor.slice/jobvisor-abc")
        }
    );
    // Under systemd: the delegated own cgroup.
    assert_eq!(
        detect(&host(
            v2.path(),
            "0::/system.slice/jobvisor.service\n",
            true
        )),
        CgroupMode::V2 {
            base: v2.path().join("system.slice/jobvisor.service")
        }
    );

    let hy = fake(&[
        "unified/cgroup.procs",
        "memory/cgroup.procs",
        "cpu/cgroup.procs",
        "cpuacct/cgroup.procs",
        "pids/cgroup.procs",
        "freezer/cgroup.procs",
        "blkio/cgroup.procs",
    ]);
    let r = hy.path();
    let slice = "jobvisor.slice/jobvisor-abc";
    assert_eq!(
        detect(&host(r, HYBRID_SELF, false)),
        CgroupMode::Hybrid {
            unified: Some(r.join("unified").join(slice)),
            v1: vec![
                // Below our own v1 cgroup, so that what confines us confines our pods.
                ("memory", r.join("memory/sandbox/x").join(slice)),
                ("cpu", r.join("cpu").join(slice)),
                ("cpuacct", r.join("cpuacct").join(slice)),
                ("pids", r.join("pids").join(slice)),
                ("freezer", r.join("freezer").join(slice)),
            ],
        }
    );

    let none = fake(&["something-else"]);
    assert!(matches!(
        detect(&host(none.path(), "0::/\n", false)),
        CgroupMode::None { .. }
    ));
}

#[test]
fn self_cgroup_parsing() {
    let parsed = parse_self_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/c\n0::/d\nbroken\n");
    assert_eq!(parsed.unified.as_deref(), Some("/d"));
    assert_eq!(
        parsed.v1,
        vec![
            ("memory".to_owned(), "/a/b".to_owned()),
            ("cpu,cpuacct".to_owned(), "/c".to_owned())
        ]
    );
}

#[test]
fn kubelet_cpu_mapping() {
    // pkg/kubelet/cm/helpers_linux_test.go and cgroup_manager_linux.go values.
    assert_eq!(cpu_quota_us(500), 50_000);
    assert_eq!(cpu_quota_us(1500), 150_000);
    assert_eq!(cpu_quota_us(1), MIN_QUOTA_US);
    assert_eq!(cpu_shares(0), 2);
    assert_eq!(cpu_shares(1000), 1024);
    assert_eq!(cpu_shares(250), 256);
    assert_eq!(cpu_weight(2), 1);
    assert_eq!(cpu_weight(1024), 39);
    assert_eq!(cpu_weight(262_144), 10_000);
}

#[test]
fn limit_files_per_hierarchy() {
    let l = Limits {
        memory_bytes: Some(32 << 20),
        cpu_limit_millis: Some(500),
        cpu_request_millis: Some(250),
    };
    let names = |k| {
        limit_files(k, &l)
            .into_iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(Kind::Unified),
        [
            "memory.max=33554432",
            "memory.swap.max=0",
            "memory.oom.group=1",
            "cpu.max=50000 100000",
            "cpu.weight=10"
        ]
    );
    assert_eq!(
        names(Kind::V1("memory")),
        [
            "memory.limit_in_bytes=33554432",
            "memory.memsw.limit_in_bytes=33554432"
        ]
    );
    assert_eq!(
        names(Kind::V1("cpu")),
        [
            "cpu.cfs_period_us=100000",
            "cpu.cfs_quota_us=50000",
            "cpu.shares=256"
        ]
    );
    assert!(names(Kind::V1("pids")).is_empty());
    assert!(limit_files(Kind::Unified, &Limits::default()).is_empty());
}

#[test]
fn oom_counters() {
    let events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
    assert_eq!(keyed_value(events, "oom_kill"), Some(1));
    assert_eq!(
        keyed_value("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill"),
        Some(2)
    );
    assert_eq!(keyed_value("oom_kill_disable 0\n", "oom_kill"), None);
}

#[test]
fn setup_refuses_a_subtree_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let mode = CgroupMode::V2 {
        base: blocker.join("jobvisor.slice"),
    };
    let why = Cgroups::setup(mode, false).unwrap_err();
    assert!(why.contains("cannot create"), "{why}");
    assert_eq!(
        Cgroups::setup(
            CgroupMode::None {
                reason: "off".into()
            },
            false
        )
        .unwrap_err(),
        "off"
    );
}

#[test]
fn prepare_lays_out_pod_and_container_on_a_fake_v2() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let cg = Cgroups::setup(CgroupMode::V2 { base: base.clone() }, false).unwrap();
    // A fake has no interface files: make the ones we write.
    let c = base.join("poduid1/main");
    std::fs::create_dir_all(&c).unwrap();
    for f in [
        "cgroup.procs",
        "memory.max",
        "memory.oom.group",
        "cpu.max",
        "cpu.weight",
    ] {
        std::fs::write(c.join(f), "").unwrap();
    }
    std::fs::write(base.join("poduid1/pids.max"), "").unwrap();
    std::fs::write(c.join("memory.events"), "oom_kill 2\n").unwrap();
    let limits = Limits {
        memory_bytes: Some(1 << 20),
        cpu_limit_millis: Some(1500),
        cpu_request_millis: None,
    };
    let p = cg.prepare("uid1", "main", &limits, Some(20)).unwrap();
    assert_eq!(p.procs.len(), 1);
    assert_eq!(p.oom_before, 2);
    let read = |f: &str| std::fs::read_to_string(base.join("poduid1").join(f)).unwrap();
    assert_eq!(read("pids.max"), "20");
    assert_eq!(read("main/memory.max"), "1048576");
    assert_eq!(read("main/cpu.max"), "150000 100000");
    assert!(!cg.oom_killed("uid1", "main", p.oom_before));
    std::fs::write(c.join("memory.events"), "oom_kill 3\n").unwrap();
    assert!(cg.oom_killed("uid1", "main", p.oom_before));
}

/// A daemon killed while it made or removed a pod's cgroups (one hierarchy after another)
/// leaves the pod in some hierarchies only: the next start finds and removes it in each.
#[test]
fn leftovers_in_some_hierarchies_only_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let base = |h: &str| r.join(h).join("jobvisor.slice/jobvisor-x");
    let mode = CgroupMode::Hybrid {
        unified: Some(base("unified")),
        v1: vec![("memory", base("memory")), ("cpuacct", base("cpuacct"))],
    };
    let cg = Cgroups::setup(mode, false).unwrap();
    // Gone from the unified tree (removed first), still in the v1 ones; another pod only in
    // the unified tree (made first).
    for h in ["memory", "cpuacct"] {
        std::fs::create_dir_all(base(h).join("podA/main")).unwrap();
    }
    std::fs::create_dir_all(base("unified").join("podB")).unwrap();
    assert_eq!(cg.kill_all_pods(), 2);
    for h in ["unified", "memory", "cpuacct"] {
        let left: Vec<_> = std::fs::read_dir(base(h))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{h}: {left:?}");
    }
}

#![allow(clippy::unwrap_used)]

use super::*;

const HEX64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// `ParseNormalizedNamed` + `TagNameOnly` of each input, or its error. Rows from
/// distribution/reference's `normalize_test.go` and `reference_test.go`, normalised.
#[test]
fn normalisation_table() {
    use ReferenceError::*;
    let d = format!("sha256:{HEX64}");
    let cases: Vec<(String, Result<String, ReferenceError>)> = vec![
        // Docker Hub: one image, however it is written.
        (
            "busybox".into(),
            Ok("docker.io/library/busybox:latest".into()),
        ),
        (
            "busybox:latest".into(),
            Ok("docker.io/library/busybox:latest".into()),
        ),
        (
            "library/busybox".into(),
            Ok("docker.io/library/busybox:latest".into()),
        ),
        (
            "docker.io/busybox".into(),
            Ok("docker.io/library/busybox:latest".into()),
        ),
        (
            "docker.io/library/busybox:latest".into(),
            Ok("docker.io/library/busybox:latest".into()),
        ),
        (
            "index.docker.io/library/ubuntu".into(),
            Ok("docker.io/library/ubuntu:latest".into()),
        ),
        (
            "index.docker.io/fooo/bar".into(),
            Ok("docker.io/fooo/bar:latest".into()),
        ),
        (
            "busybox:1.36".into(),
            Ok("docker.io/library/busybox:1.36".into()),
        ),
        (
            "kodekloud/throw-dice".into(),
            Ok("docker.io/kodekloud/throw-dice:latest".into()),
        ),
        (
            "other/library".into(),
            Ok("docker.io/other/library:latest".into()),
        ),
        // Other registries stay; a port is not a tag.
        (
            "registry.example.com:5000/x/y:1.2".into(),
            Ok("registry.example.com:5000/x/y:1.2".into()),
        ),
        (
            "localhost/privatebase".into(),
            Ok("localhost/privatebase:latest".into()),
        ),
        (
            "localhost:8000/private/moonbase".into(),
            Ok("localhost:8000/private/moonbase:latest".into()),
        ),
        (
            "127.0.0.1:5000/debian".into(),
            Ok("127.0.0.1:5000/debian:latest".into()),
        ),
        (
            "example.com/privatebase".into(),
            Ok("example.com/privatebase:latest".into()),
        ),
        (
            "test.com:5000".into(),
            Ok("docker.io/library/test.com:5000".into()),
        ),
        (
            "192.168.0.1".into(),
            Ok("docker.io/library/192.168.0.1:latest".into()),
        ),
        (
            "192.168.0.1:80".into(),
            Ok("docker.io/library/192.168.0.1:80".into()),
        ),
        (
            "foo/foo_bar.com:8080".into(),
            Ok("docker.io/foo/foo_bar.com:8080".into()),
        ),
        (
            "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
            Ok("sub-dom1.foo.com/bar/baz/quux:some-long-tag".into()),
        ),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            Ok("b.gcr.io/test.example.com/my-app:test.example.com".into()),
        ),
        (
            "xn--n3h.com/myimage:xn--n3h.com".into(),
            Ok("xn--n3h.com/myimage:xn--n3h.com".into()),
        ),
        (
            "[2001:db8::1]:5000/repo:tag".into(),
            Ok("[2001:db8::1]:5000/repo:tag".into()),
        ),
        (
            "[::1]:5000/repo".into(),
            Ok("[::1]:5000/repo:latest".into()),
        ),
        (
            "lowercase:Uppercase".into(),
            Ok("docker.io/library/lowercase:Uppercase".into()),
        ),
        (
            "a---b__c.d_e:t".into(),
            Ok("docker.io/library/a---b__c.d_e:t".into()),
        ),
        // A first component with a dot that is no domain name: the regexp takes it all as a
        // path, with no domain (and no docker.io).
        ("a_b.com/x".into(), Ok("a_b.com/x:latest".into())),
        // An uppercase first component is a domain (a path cannot have one).
        ("Docker/docker".into(), Ok("Docker/docker:latest".into())),
        // A digest is kept, and no default tag is added beside it.
        (
            format!("busybox@{d}"),
            Ok(format!("docker.io/library/busybox@{d}")),
        ),
        (
            format!("busybox:1.36@{d}"),
            Ok(format!("docker.io/library/busybox:1.36@{d}")),
        ),
        (
            format!("test:5000/repo@{d}"),
            Ok(format!("test:5000/repo@{d}")),
        ),
        (
            format!("docker.io/{}", &HEX64[..64]),
            Ok(format!("docker.io/library/{HEX64}:latest")),
        ),
        // Errors, in the libraries' words.
        ("".into(), Err(InvalidFormat)),
        (":justtag".into(), Err(InvalidFormat)),
        (format!("@{d}"), Err(InvalidFormat)),
        (
            "Uppercase:tag".into(),
            Err(RemoteUppercase("library/Uppercase".into())),
        ),
        (
            "docker/Docker".into(),
            Err(RemoteUppercase("docker/Docker".into())),
        ),
        (
            "test:5000/Uppercase/lowercase:tag".into(),
            Err(RemoteUppercase("Uppercase/lowercase".into())),
        ),
        ("-docker".into(), Err(InvalidFormat)),
        ("-docker.io/docker/docker".into(), Err(InvalidFormat)),
        ("docker///docker".into(), Err(InvalidFormat)),
        (
            "https://github.com/docker/docker".into(),
            Err(InvalidFormat),
        ),
        ("aa/asdf$$^/aa".into(), Err(InvalidFormat)),
        ("a..b".into(), Err(InvalidFormat)),
        ("a___b".into(), Err(InvalidFormat)),
        ("busybox:".into(), Err(InvalidFormat)),
        (format!("busybox:{}", "t".repeat(129)), Err(InvalidFormat)),
        ("[2001:db8::1]".into(), Err(InvalidFormat)),
        ("[fe80::1%eth0]:5000/repo".into(), Err(InvalidFormat)),
        (HEX64.into(), Err(HexIdentifier(HEX64.into()))),
        // The limit counts the normalised name, docker.io/ included.
        (format!("{}a:tag", "a/".repeat(123)), Err(NameTooLong)),
        (format!("repo@sha256:{}", &HEX64[..63]), Err(DigestLength)),
        (
            format!("validname@invaliddigest:{HEX64}"),
            Err(DigestUnsupported),
        ),
        (
            format!("repo@sha256:{}", HEX64.to_uppercase()),
            Err(DigestFormat),
        ),
        ("repo@sha256:fff".into(), Err(InvalidFormat)),
        // Neither a domain nor (uppercase) a path, where the lowercase form is a path.
        ("A_B.com/x".into(), Err(NameUppercase)),
    ];
    for (input, want) in cases {
        let got = Reference::normalized(&input).map(|r| r.to_string());
        assert_eq!(got, want, "{input:?}");
    }
    // 255 characters of name, and a long tag, are within the limit.
    let long = format!("{}a:tag-puts-this-over-max", "a/".repeat(122));
    assert!(Reference::normalized(&long).is_ok());
    assert_eq!(
        Reference::normalized("Example.com/x").map(|r| r.name().to_string()),
        Ok("Example.com/x".into())
    );
}

#[test]
fn error_messages_read_as_the_runtimes_print_them() {
    let e = Reference::normalized("Busybox").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
    assert_eq!(
        Reference::normalized("a b").unwrap_err().to_string(),
        "invalid reference format"
    );
}

fn cfg(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
    ImageConfig {
        entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        ..ImageConfig::default()
    }
}

fn table(entries: &[(&str, &str)]) -> Images {
    let user = entries
        .iter()
        .map(|(k, marker)| (k.to_string(), cfg(&[], &[marker])))
        .collect();
    Images::empty().with(user).unwrap()
}

/// Which entry answers each image: exact tags beat repositories; a digest matches the
/// entry of that digest even with a tag beside it.
#[test]
fn lookup_table() {
    let d = format!("sha256:{HEX64}");
    let images = table(&[
        ("busybox", "busybox-any"),
        ("busybox:1.36", "busybox-1.36"),
        ("docker.io/library/python:latest", "python-latest"),
        ("kodekloud/throw-dice", "dice"),
        ("registry.example.com:5000/x/y:1.2", "private"),
        (&format!("alpine@{d}"), "alpine-digest"),
    ]);
    let cases: Vec<(String, Option<&str>)> = vec![
        ("busybox".into(), Some("busybox-any")),
        ("busybox:latest".into(), Some("busybox-any")),
        ("library/busybox:1.35".into(), Some("busybox-any")),
        ("busybox:1.36".into(), Some("busybox-1.36")),
        (
            "docker.io/library/busybox:1.36".into(),
            Some("busybox-1.36"),
        ),
        (format!("busybox:1.36@{d}"), Some("busybox-any")),
        ("python".into(), Some("python-latest")),
        ("python:3.12".into(), None),
        ("kodekloud/throw-dice".into(), Some("dice")),
        ("docker.io/kodekloud/throw-dice:v2".into(), Some("dice")),
        ("throw-dice".into(), None),
        ("registry.example.com:5000/x/y:1.2".into(), Some("private")),
        ("registry.example.com:5000/x/y".into(), None),
        ("registry.example.com/x/y:1.2".into(), None),
        (format!("alpine@{d}"), Some("alpine-digest")),
        (format!("alpine:3@{d}"), Some("alpine-digest")),
        ("alpine".into(), None),
        ("nginx".into(), None),
    ];
    for (image, want) in cases {
        let r = Reference::normalized(&image).unwrap();
        let got = images.lookup(&r).map(|c| c.cmd[0].as_str());
        assert_eq!(got, want, "{image}");
    }
}

#[test]
fn config_entries_overlay_the_builtins_and_may_not_repeat_an_image() {
    let builtin = Images::builtin();
    let busybox = Reference::normalized("busybox").unwrap();
    assert_eq!(
        builtin.lookup(&busybox).map(|c| c.cmd.clone()),
        Some(vec!["sh".to_string()])
    );
    let user: BTreeMap<String, ImageConfig> = [(
        "docker.io/library/busybox".to_string(),
        cfg(&["/bin/busybox"], &["sh"]),
    )]
    .into();
    let images = Images::builtin().with(user).unwrap();
    assert_eq!(
        images.lookup(&busybox).map(|c| c.entrypoint.clone()),
        Some(vec!["/bin/busybox".to_string()])
    );
    assert_eq!(
        images.entries.len(),
        builtin.entries.len(),
        "replaced, not added"
    );
    // An exact key beside the built-in repository key: both stay.
    let user: BTreeMap<String, ImageConfig> =
        [("busybox:1.36".to_string(), cfg(&[], &["x"]))].into();
    assert_eq!(Images::builtin().with(user).unwrap().entries.len(), 8);

    let twice: BTreeMap<String, ImageConfig> = [
        ("busybox".to_string(), cfg(&[], &["a"])),
        ("library/busybox".to_string(), cfg(&[], &["b"])),
    ]
    .into();
    assert_eq!(
        Images::builtin().with(twice).unwrap_err(),
        r#"keys "busybox" and "library/busybox" name the same image (docker.io/library/busybox); keep one"#
    );
    let bad: BTreeMap<String, ImageConfig> = [("Busybox".to_string(), cfg(&[], &["a"]))].into();
    assert_eq!(
        Images::builtin().with(bad).unwrap_err(),
        r#"key "Busybox" is not an image reference: invalid reference format: repository name (library/Busybox) must be lowercase"#
    );
}

#[test]
fn builtins_run_the_tutorials_images() {
    let images = Images::builtin();
    assert_eq!(images.entries.len(), 7, "every built-in key parses");
    let get = |image: &str| {
        images
            .lookup(&Reference::normalized(image).unwrap())
            .unwrap()
            .clone()
    };
    assert_eq!(get("busybox:1.36"), cfg(&[], &["sh"]));
    assert_eq!(get("ubuntu:22.04"), cfg(&[], &["/bin/bash"]));
    for (image, name, file) in [
        ("kodekloud/throw-dice", "throw-dice", THROW_DICE_SCRIPT),
        (
            "kodekloud/random-error",
            "random-error",
            RANDOM_ERROR_SCRIPT,
        ),
    ] {
        let c = get(image);
        assert_eq!(c.cmd, Vec::<String>::new());
        assert_eq!(c.entrypoint.len(), 4, "{image}");
        assert_eq!(
            (c.entrypoint[0].as_str(), c.entrypoint[1].as_str()),
            ("/bin/sh", "-c")
        );
        assert_eq!(c.entrypoint[3], name);
        let script = &c.entrypoint[2];
        // One line (the pod shows it as its command line), the file without its comments.
        assert!(!script.contains('\n') && !script.contains('#'), "{script}");
        assert!(file.starts_with("#!/bin/sh\n") && file.contains(script.as_str()));
    }
}

/// The images of the Kubernetes documentation's Job examples (`content/en/examples/controllers/`
/// in kubernetes/website): `perl:5.34.0`, `python`, `docker.io/library/python:3`,
/// `docker.io/library/bash:5`, under their real images' entrypoint and cmd.
#[test]
fn builtins_run_the_documentation_examples_images() {
    let images = Images::builtin();
    let get = |image: &str| {
        images
            .lookup(&Reference::normalized(image).unwrap())
            .unwrap_or_else(|| panic!("no entry for {image}"))
            .clone()
    };
    assert_eq!(get("perl:5.34.0"), cfg(&[], &["perl", "-de0"]));
    assert_eq!(get("python"), cfg(&[], &["python3"]));
    assert_eq!(get("docker.io/library/python:3"), cfg(&[], &["python3"]));
    let bash = get("docker.io/library/bash:5");
    assert_eq!(bash.cmd, ["bash"]);
    assert_eq!(bash.entrypoint.len(), 4);
    assert_eq!(bash.entrypoint[..2], ["/bin/sh", "-c"]);
    assert_eq!(bash.entrypoint[3], "docker-entrypoint.sh");
    let script = &bash.entrypoint[2];
    assert!(!script.contains('\n'), "one line: {script}");
    assert!(BASH_ENTRYPOINT_SCRIPT.starts_with("#!/bin/sh\n"));
    assert!(BASH_ENTRYPOINT_SCRIPT.ends_with(&format!("{script}\n")));

    // As with the image: no command and no args runs `bash` through the entrypoint; `args`
    // starting with an option go to bash; a command replaces the entrypoint.
    let argv = |c: &Container| resolve(&images, c).unwrap().argv(|w| w.to_string());
    let entry = |rest: &[&str]| {
        let mut v = bash.entrypoint.clone();
        v.extend(rest.iter().map(|w| w.to_string()));
        v
    };
    let c = container(Some("bash:5"), None, None);
    assert_eq!(argv(&c), entry(&["bash"]));
    let c = container(Some("bash:5"), None, Some(&["-c", "echo hi"]));
    assert_eq!(argv(&c), entry(&["-c", "echo hi"]));
    let c = container(Some("bash:5"), Some(&["bash"]), Some(&["-c", "exit 42"]));
    assert_eq!(argv(&c), ["bash", "-c", "exit 42"]);
    let c = container(Some("python"), None, Some(&["python3", "-V"]));
    assert_eq!(argv(&c), ["python3", "-V"]);
}

fn container(image: Option<&str>, command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
    let list = |l: Option<&[&str]>| l.map(|l| l.iter().map(|s| s.to_string()).collect());
    Container {
        name: "c".into(),
        image: image.map(String::from),
        command: list(command),
        args: list(args),
        ..Container::default()
    }
}

/// containerd's `WithProcessArgs` over the image's config, for each combination.
#[test]
fn command_and_args_against_the_image() {
    let mut user = BTreeMap::new();
    user.insert("both".to_string(), cfg(&["/ep", "-x"], &["cmd1", "cmd2"]));
    user.insert("cmd-only".to_string(), cfg(&[], &["sh"]));
    user.insert("ep-only".to_string(), cfg(&["/ep"], &[]));
    user.insert("cleared".to_string(), cfg(&[""], &["run"]));
    user.insert("nothing".to_string(), ImageConfig::default());
    let images = Images::empty().with(user).unwrap();
    type Row<'a> = (
        Option<&'a str>,
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
        Result<Vec<&'a str>, Unrunnable>,
    );
    let no_entry = |r: &str| {
        Err(Unrunnable::NoEntry {
            reference: r.into(),
        })
    };
    let cases: Vec<Row> = vec![
        // command replaces the entrypoint and drops cmd; args follow.
        (Some("both"), Some(&["echo"]), None, Ok(vec!["echo"])),
        (
            Some("both"),
            Some(&["echo"]),
            Some(&["a", "b"]),
            Ok(vec!["echo", "a", "b"]),
        ),
        // only args: entrypoint + args, cmd dropped.
        (Some("both"), None, Some(&["a"]), Ok(vec!["/ep", "-x", "a"])),
        (
            Some("cmd-only"),
            None,
            Some(&["sh", "-c", "echo hi"]),
            Ok(vec!["sh", "-c", "echo hi"]),
        ),
        // neither: entrypoint + cmd.
        (
            Some("both"),
            None,
            None,
            Ok(vec!["/ep", "-x", "cmd1", "cmd2"]),
        ),
        (Some("cmd-only"), None, None, Ok(vec!["sh"])),
        (Some("ep-only"), None, None, Ok(vec!["/ep"])),
        // Empty lists are unset, as the kubelet passes them.
        (
            Some("both"),
            Some(&[]),
            Some(&[]),
            Ok(vec!["/ep", "-x", "cmd1", "cmd2"]),
        ),
        // [""] clears the entrypoint.
        (Some("cleared"), None, None, Ok(vec!["run"])),
        (Some("nothing"), None, Some(&["x"]), Ok(vec!["x"])),
        (
            Some("nothing"),
            None,
            None,
            Err(Unrunnable::NoCommand {
                reference: "docker.io/library/nothing:latest".into(),
            }),
        ),
        // No entry: fine with a command, refused without.
        (Some("nginx"), Some(&["true"]), None, Ok(vec!["true"])),
        (
            Some("nginx"),
            None,
            None,
            no_entry("docker.io/library/nginx:latest"),
        ),
        (
            Some("nginx"),
            None,
            Some(&["x"]),
            no_entry("docker.io/library/nginx:latest"),
        ),
        // A bad reference matters only when the image would be used.
        (Some("Bad"), Some(&["true"]), None, Ok(vec!["true"])),
        (
            Some("Bad"),
            None,
            None,
            Err(Unrunnable::InvalidReference {
                image: "Bad".into(),
                error: ReferenceError::RemoteUppercase("library/Bad".into()),
            }),
        ),
        // No image at all.
        (None, Some(&["true"]), None, Ok(vec!["true"])),
        (None, None, Some(&["x"]), Err(Unrunnable::NoImage)),
        (Some(""), None, None, Err(Unrunnable::NoImage)),
    ];
    for (image, command, args, want) in cases {
        let c = container(image, command, args);
        let got = resolve(&images, &c).map(|p| p.argv(|w| w.to_string()));
        let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, want, "{image:?} command {command:?} args {args:?}");
    }
}

/// `$(VAR)` reaches the container's own words only, never the image's.
#[test]
fn only_the_containers_words_are_expanded() {
    let images = Images::empty()
        .with([("i".to_string(), cfg(&["$(A)"], &["$(A)"]))].into())
        .unwrap();
    let expand = |w: &str| w.replace("$(A)", "x");
    let argv = |c: &Container| resolve(&images, c).unwrap().argv(expand);
    assert_eq!(argv(&container(Some("i"), None, None)), ["$(A)", "$(A)"]);
    assert_eq!(
        argv(&container(Some("i"), None, Some(&["$(A)"]))),
        ["$(A)", "x"]
    );
    assert_eq!(
        argv(&container(Some("i"), Some(&["$(A)"]), Some(&["$(A)"]))),
        ["x", "x"]
    );
}

#[test]
fn working_dir_and_env_come_from_the_image_unless_the_container_sets_them() {
    let mut image = cfg(&[], &["run"]);
    image.working_dir = Some("/srv".into());
    image.env = vec![("A".into(), "1".into())];
    let images = Images::empty()
        .with([("app".to_string(), image)].into())
        .unwrap();
    let mut c = container(Some("app"), Some(&["true"]), None);
    let p = resolve(&images, &c).unwrap();
    // With a command too: an image's directory and environment are not its entrypoint.
    assert_eq!(p.working_dir, Some("/srv"));
    assert_eq!(p.env, [("A".to_string(), "1".to_string())]);
    c.working_dir = Some("/tmp".into());
    assert_eq!(resolve(&images, &c).unwrap().working_dir, Some("/tmp"));
    c.working_dir = Some(String::new());
    assert_eq!(resolve(&images, &c).unwrap().working_dir, Some("/srv"));
    let other = container(Some("nginx"), Some(&["true"]), None);
    let p = resolve(&images, &other).unwrap();
    assert_eq!((p.working_dir, p.env.len()), (None, 0));
}

#[test]
fn unrunnable_messages() {
    assert_eq!(
        Unrunnable::NoEntry {
            reference: "docker.io/library/nginx:latest".into()
        }
        .to_string(),
        r#"image "docker.io/library/nginx:latest" has no entry under images: in the daemon config; set command, or add the image there"#
    );
    assert_eq!(
        Unrunnable::NoImage.to_string(),
        "the container has no image to take a command from; set command"
    );
}

#[test]
fn status_image_is_the_normalised_reference() {
    assert_eq!(status_image("busybox"), "docker.io/library/busybox:latest");
    assert_eq!(status_image("perl:5.34.0"), "docker.io/library/perl:5.34.0");
    assert_eq!(status_image("Not Valid"), "Not Valid");
}

#[test]
fn image_config_env_is_a_list_of_name_value() {
    let c: ImageConfig =
        serde_saphyr::from_str("cmd: [run]\nenv: [\"A=1\", \"B=x=y\", \"C=\"]\nworkingDir: /srv\n")
            .unwrap();
    assert_eq!(
        c.env,
        [("A", "1"), ("B", "x=y"), ("C", "")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    for bad in ["env: [A]", "env: [\"=1\"]", "env: {A: 1}", "entrypont: [x]"] {
        assert!(serde_saphyr::from_str::<ImageConfig>(bad).is_err(), "{bad}");
    }
}

//! Image aliases: what running a container's `image` means on this host.
//!
//! jobvisor has no images: it runs host processes. A container that sets `command` runs it;
//! one that leaves it to the image (as `kubectl create job --image=busybox` and many
//! tutorials do) runs what the daemon config's `images:` table says the image would run: an
//! `entrypoint`, a `cmd`, and optionally a `workingDir` and `env`, as an image's config has
//! them. Everything here is pure: reference normalisation, lookup, and the command/args
//! rules; the daemon and the validator pass the table in.
//!
//! **References** are normalised as container runtimes do it (docker/distribution
//! `reference.ParseNormalizedNamed`, then `TagNameOnly`): `busybox`, `library/busybox`,
//! `docker.io/library/busybox:latest` are one image; a digest is kept.
//!
//! **Keys** of the table are either exact (with a tag or a digest: `python:3.12`) or a
//! repository (no tag: `python`, any tag matches). An exact entry beats a repository one.
//!
//! **Command and args** follow Kubernetes. The kubelet hands the container's `command` and
//! `args`, `$(VAR)`-expanded, to the runtime (`pkg/kubelet/kuberuntime/kuberuntime_container.go`
//! `generateContainerConfig`, expansion in `pkg/kubelet/container/helpers.go`
//! `ExpandContainerCommandAndArgs`), and containerd merges them with the image
//! (`internal/cri/opts/spec_opts.go` `WithProcessArgs`): `command` set → it replaces the
//! entrypoint and the image's cmd is dropped, `args` follow; only `args` → entrypoint + args;
//! neither → entrypoint + cmd. An empty list counts as unset, and an entrypoint of `[""]`
//! as none (Docker's way to clear it). The image's words are never `$(VAR)`-expanded: the
//! kubelet expands only what the pod says.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::api::Container;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
/// distribution/reference `NameTotalLengthMax`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// The scripts behind the built-in `kodekloud/*` aliases. The same files are installed with
/// the package (`/usr/share/jobvisor/images/`); embedding them keeps the aliases working
/// from a clone (`--root`) and in tests.
const RANDOM_ERROR_SCRIPT: &str = include_str!("../packaging/images/random-error.sh");
const THROW_DICE_SCRIPT: &str = include_str!("../packaging/images/throw-dice.sh");
/// The official `bash` image's `docker-entrypoint.sh`, as a one-line script.
const BASH_ENTRYPOINT_SCRIPT: &str = include_str!("../packaging/images/bash-entrypoint.sh");

// ---------------------------------------------------------------- references

/// A normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io/library/busybox`: the repository.
    name: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a reference does not parse, in distribution/reference's and go-digest's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RemoteUppercase(String),
    #[error("repository name must be lowercase")]
    NameUppercase,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    #[error("invalid checksum digest format")]
    DigestFormat,
    #[error("invalid checksum digest length")]
    DigestLength,
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

impl Reference {
    /// `reference.ParseNormalizedNamed`: the reference as written, with the domain and the
    /// `library/` prefix filled in; no default tag.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::RemoteUppercase(remote.to_string()));
        }
        let parsed = match split_reference(&domain, &remainder) {
            Some(parts) => parts,
            None => {
                let lower = (domain.to_lowercase(), remainder.to_lowercase());
                return Err(match split_reference(&lower.0, &lower.1) {
                    Some(_) => ReferenceError::NameUppercase,
                    None => ReferenceError::InvalidFormat,
                });
            }
        };
        let (name, tag, digest) = parsed;
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(d) = digest {
            validate_digest(d)?;
        }
        Ok(Reference {
            tag: tag.map(String::from),
            digest: digest.map(String::from),
            name,
        })
    }

    /// What a runtime pulls and reports: [`Reference::parse_named`] with the default tag
    /// `latest` when neither a tag nor a digest is given (`reference.TagNameOnly`).
    pub fn normalized(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// The repository: `docker.io/library/busybox`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names one image (a tag or a digest), not a whole repository.
    fn is_exact(&self) -> bool {
        self.tag.is_some() || self.digest.is_some()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The reference as the kubelet reports it in `ContainerStatus.image` (normalised, with the
/// default tag); as written when it does not parse, since nothing was pulled to name.
pub fn status_image(image: &str) -> String {
    Reference::normalized(image).map_or_else(|_| image.to_string(), |r| r.to_string())
}

/// distribution/reference `splitDockerDomain`: the first component is a domain only if it
/// looks like one (a `.` or `:`, `localhost`, or uppercase, which a path cannot have).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `ReferenceRegexp` over `domain/remainder`: the name, tag and digest when it matches. The
/// name is a domain and a path, or (as the regexp's optional domain allows) all path.
fn split_reference<'a>(
    domain: &str,
    remainder: &'a str,
) -> Option<(String, Option<&'a str>, Option<&'a str>)> {
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    let (path, tag) = match name_tag.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (name_tag, None),
    };
    let name = format!("{domain}/{path}");
    let name_ok = (is_domain(domain) && is_path(path)) || is_path(&name);
    let tag_ok = tag.is_none_or(is_tag);
    let digest_ok = digest.is_none_or(is_digest_shape);
    (name_ok && tag_ok && digest_ok).then_some((name, tag, digest))
}

/// `domainAndPort`: a host (DNS name or `[IPv6]`) and an optional numeric port.
fn is_domain(s: &str) -> bool {
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else {
                return false;
            };
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return false,
                },
            };
            let v6_ok = !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
            (v6_ok, port)
        }
        None => match s.split_once(':') {
            Some((h, p)) => (h.split('.').all(is_domain_component), Some(p)),
            None => (s.split('.').all(is_domain_component), None),
        },
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `domainNameComponent`: alphanumerics, with dashes inside.
fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `path`: path components separated by `/`.
fn is_path(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `pathComponent`: lowercase alphanumerics joined by `.`, `_`, `__` or any run of `-`.
fn is_path_component(s: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' if b.get(i + 1) == Some(&b'_') => i += 2,
            b'_' => i += 1,
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `tag`: `[\w][\w.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// The digest's shape in `ReferenceRegexp`: `algorithm:hex`, at least 32 hex digits.
fn is_digest_shape(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let component = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(component)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest `Digest.Validate`: a known algorithm and its length in lowercase hex.
fn validate_digest(s: &str) -> Result<(), ReferenceError> {
    let (algorithm, hex) = s.split_once(':').ok_or(ReferenceError::DigestFormat)?;
    let size = match algorithm {
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != size * 2 {
        return Err(ReferenceError::DigestLength);
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

// ---------------------------------------------------------------- the table

/// What running an image means, as an image's config has it (`docker inspect`'s `Config`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `NAME=value` strings, as in an image's config (so `docker inspect` output pastes in).
    #[serde(default, deserialize_with = "env_list")]
    pub env: Vec<(String, String)>,
}

fn env_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    Vec::<String>::deserialize(d)?
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(serde::de::Error::custom(format!(
                "env entry {entry:?} is not NAME=value"
            ))),
        })
        .collect()
}

/// The `images:` table: the built-in aliases, overlaid with the config's entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// The key as written, for messages.
    key: String,
    /// Normalised without a default tag: no tag and no digest means the whole repository.
    reference: Reference,
    image: ImageConfig,
}

impl Default for Images {
    fn default() -> Self {
        Images::builtin()
    }
}

impl Images {
    /// What the Kubernetes tutorials' and documentation examples' images run, as their real
    /// configs say: `busybox` and `ubuntu` start a shell (`cmd`: `sh`, `/bin/bash`), `python`
    /// the interpreter (`cmd`: `python3`), `perl` its debugger (`cmd`: `perl5.x -de0`; here
    /// the host's `perl`), `bash` its `docker-entrypoint.sh` with `cmd` `bash`;
    /// `kodekloud/random-error` fails at random and `kodekloud/throw-dice` succeeds only on a
    /// six (`packaging/images/`).
    pub fn builtin() -> Images {
        let cmd = |words: &[&str]| ImageConfig {
            cmd: words.iter().map(|w| w.to_string()).collect(),
            ..ImageConfig::default()
        };
        let bash = ImageConfig {
            cmd: vec!["bash".to_string()],
            ..script(BASH_ENTRYPOINT_SCRIPT, "docker-entrypoint.sh")
        };
        let builtins = [
            ("busybox", cmd(&["sh"])),
            ("ubuntu", cmd(&["/bin/bash"])),
            ("python", cmd(&["python3"])),
            ("perl", cmd(&["perl", "-de0"])),
            ("bash", bash),
            (
                "kodekloud/random-error",
                script(RANDOM_ERROR_SCRIPT, "random-error"),
            ),
            (
                "kodekloud/throw-dice",
                script(THROW_DICE_SCRIPT, "throw-dice"),
            ),
        ];
        Images {
            entries: builtins
                .into_iter()
                .filter_map(|(key, image)| {
                    // The keys are constants: a test checks they all parse.
                    let reference = Reference::parse_named(key).ok()?;
                    Some(Entry {
                        key: key.to_string(),
                        reference,
                        image,
                    })
                })
                .collect(),
        }
    }

    /// No entries at all: every image is unknown.
    pub fn empty() -> Images {
        Images {
            entries: Vec::new(),
        }
    }

    /// These entries with the config's on top: a key naming the same reference as a
    /// built-in one replaces it; two config keys naming the same reference are an error.
    pub fn with(mut self, config: BTreeMap<String, ImageConfig>) -> Result<Images, String> {
        let mut added: Vec<Entry> = Vec::new();
        for (key, image) in config {
            let reference = Reference::parse_named(&key)
                .map_err(|e| format!("key {key:?} is not an image reference: {e}"))?;
            if let Some(other) = added.iter().find(|e| e.reference == reference) {
                return Err(format!(
                    "keys {:?} and {key:?} name the same image ({reference}); keep one",
                    other.key
                ));
            }
            added.push(Entry {
                key,
                reference,
                image,
            });
        }
        self.entries
            .retain(|b| !added.iter().any(|e| e.reference == b.reference));
        self.entries.extend(added);
        Ok(self)
    }

    /// The entry for a normalised reference: an exact one (the same tag, or the same digest:
    /// a runtime pulls by the digest and ignores a tag beside it), else its repository's.
    pub fn lookup(&self, image: &Reference) -> Option<&ImageConfig> {
        let exact = self.entries.iter().find(|e| e.reference == *image);
        let by_digest = || {
            image.digest.as_ref()?;
            self.entries.iter().find(|e| {
                e.reference.name == image.name
                    && e.reference.tag.is_none()
                    && e.reference.digest == image.digest
            })
        };
        let repository = || {
            self.entries
                .iter()
                .find(|e| !e.reference.is_exact() && e.reference.name == image.name)
        };
        exact
            .or_else(by_digest)
            .or_else(repository)
            .map(|e| &e.image)
    }
}

impl<'de> Deserialize<'de> for Images {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let config = BTreeMap::<String, ImageConfig>::deserialize(d)?;
        Images::builtin()
            .with(config)
            .map_err(|e| serde::de::Error::custom(format!("images: {e}")))
    }
}

/// An alias that runs a shell script: `/bin/sh -c SCRIPT NAME` (NAME is the script's `$0`,
/// and a container's `args` become `$1`…). The comment header of the file is left out, so
/// that the command line a pod shows stays the one line that runs.
fn script(file: &str, name: &str) -> ImageConfig {
    let body: Vec<&str> = file
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    ImageConfig {
        entrypoint: vec![
            "/bin/sh".into(),
            "-c".into(),
            body.join("\n"),
            name.to_string(),
        ],
        ..ImageConfig::default()
    }
}

// ---------------------------------------------------------------- command and args

/// What a container runs on this host, before `$(VAR)` expansion of its own words.
#[derive(Debug, Clone, PartialEq)]
pub struct Process<'a> {
    /// The image's entrypoint, run as written (empty when `command` replaces it).
    pub entrypoint: &'a [String],
    /// The container's `command` and `args`: the words `$(VAR)` applies to.
    pub own: Vec<&'a str>,
    /// The image's cmd, when the container gives neither `command` nor `args`.
    pub cmd: &'a [String],
    /// The container's `workingDir`, else the image's.
    pub working_dir: Option<&'a str>,
    /// The image's environment; the container's `env` goes on top of it.
    pub env: &'a [(String, String)],
}

impl Process<'_> {
    /// The argv: entrypoint, then the container's words through `expand`, then cmd.
    pub fn argv(&self, expand: impl Fn(&str) -> String) -> Vec<String> {
        let mut argv = self.entrypoint.to_vec();
        argv.extend(self.own.iter().map(|w| expand(w)));
        argv.extend(self.cmd.iter().cloned());
        argv
    }
}

/// Why a container cannot run here. Validation refuses such a container; a start that
/// finds one (the config changed since) ends `StartError` with [`Unrunnable`]'s text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrunnable {
    /// Neither `image` nor `command`.
    NoImage,
    /// No `command`, and the image does not parse.
    InvalidReference {
        image: String,
        error: ReferenceError,
    },
    /// No `command`, and the table has no entry for the image.
    NoEntry { reference: String },
    /// The entry has neither entrypoint nor cmd, and the container neither command nor args.
    NoCommand { reference: String },
}

impl fmt::Display for Unrunnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unrunnable::NoImage => {
                f.write_str("the container has no image to take a command from; set command")
            }
            Unrunnable::InvalidReference { image, error } => {
                write!(f, "couldn't parse image reference {image:?}: {error}")
            }
            Unrunnable::NoEntry { reference } => write!(
                f,
                "image {reference:?} has no entry under images: in the daemon config; set \
                 command, or add the image there"
            ),
            Unrunnable::NoCommand { reference } => write!(
                f,
                "image {reference:?} has neither entrypoint nor cmd under images: in the \
                 daemon config; set command or args"
            ),
        }
    }
}

/// The container's process under Kubernetes' rules (see the module docs).
pub fn resolve<'a>(images: &'a Images, c: &'a Container) -> Result<Process<'a>, Unrunnable> {
    let set = |list: &'a Option<Vec<String>>| list.as_deref().filter(|l| !l.is_empty());
    let (command, args) = (set(&c.command), set(&c.args));
    let image = c.image.as_deref().filter(|i| !i.is_empty());
    let reference = image.map(|i| (i, Reference::normalized(i)));
    let entry = match &reference {
        Some((_, Ok(r))) => images.lookup(r),
        _ => None,
    };
    let (entrypoint, own, cmd): (&[String], Vec<&str>, &[String]) = match (command, entry) {
        (Some(command), _) => {
            let own = command.iter().chain(args.into_iter().flatten());
            (&[], own.map(String::as_str).collect(), &[])
        }
        (None, Some(entry)) => {
            let entrypoint: &[String] = match entry.entrypoint.as_slice() {
                [only] if only.is_empty() => &[],
                all => all,
            };
            match args {
                Some(args) => (entrypoint, args.iter().map(String::as_str).collect(), &[]),
                None => (entrypoint, Vec::new(), &entry.cmd),
            }
        }
        (None, None) => {
            return Err(match reference {
                None => Unrunnable::NoImage,
                Some((image, Err(error))) => Unrunnable::InvalidReference {
                    image: image.to_string(),
                    error,
                },
                Some((_, Ok(r))) => Unrunnable::NoEntry {
                    reference: r.to_string(),
                },
            });
        }
    };
    if entrypoint.is_empty() && own.is_empty() && cmd.is_empty() {
        let reference = match reference {
            Some((_, Ok(r))) => r.to_string(),
            _ => String::new(),
        };
        return Err(Unrunnable::NoCommand { reference });
    }
    let working_dir = c.working_dir.as_deref().filter(|d| !d.is_empty());
    Ok(Process {
        entrypoint,
        own,
        cmd,
        working_dir: working_dir.or(entry.and_then(|e| e.working_dir.as_deref())),
        env: entry.map_or(&[], |e| e.env.as_slice()),
    })
}

#[cfg(test)]
#[path = "images_tests.rs"]
mod tests;

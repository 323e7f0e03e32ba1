//! `securityContext` of a pod and of a container: the fields jobvisor applies (the process's
//! user and groups), read from the loose JSON the spec keeps.

use serde_json::Value;

/// The fields of a pod's or a container's `securityContext` that jobvisor applies. A field
/// only the pod has (`supplementalGroups`, `fsGroup`) stays `None` on a container's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityContext {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub supplemental_groups: Option<Vec<i64>>,
    pub fs_group: Option<i64>,
}

/// Fields the pod's `securityContext` may carry here.
pub const POD_FIELDS: [&str; 5] = [
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "supplementalGroups",
    "fsGroup",
];
/// Fields the container's `securityContext` may carry here.
pub const CONTAINER_FIELDS: [&str; 3] = ["runAsUser", "runAsGroup", "runAsNonRoot"];

impl SecurityContext {
    /// Reads the known fields; `Err((field, what is wrong))` for one of the wrong type.
    /// Unknown fields are the validator's to report.
    pub fn from_value(v: Option<&Value>) -> Result<SecurityContext, (String, String)> {
        let Some(v) = v else {
            return Ok(SecurityContext::default());
        };
        let int = |name: &str| -> Result<Option<i64>, (String, String)> {
            match v.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| (name.to_owned(), format!("must be an integer, not {x}"))),
            }
        };
        let groups = match v.get("supplementalGroups") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .enumerate()
                    .map(|(i, g)| {
                        g.as_i64().ok_or_else(|| {
                            (
                                format!("supplementalGroups[{i}]"),
                                format!("must be an integer, not {g}"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(x) => {
                return Err((
                    "supplementalGroups".into(),
                    format!("must be a list of integers, not {x}"),
                ));
            }
        };
        let non_root = match v.get("runAsNonRoot") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(x) => return Err(("runAsNonRoot".into(), format!("must be a boolean, not {x}"))),
        };
        Ok(SecurityContext {
            run_as_user: int("runAsUser")?,
            run_as_group: int("runAsGroup")?,
            run_as_non_root: non_root,
            supplemental_groups: groups,
            fs_group: int("fsGroup")?,
        })
    }

    /// The container's context over the pod's, as the kubelet merges them
    /// (`pkg/securitycontext/util.go`, `DetermineEffectiveSecurityContext`).
    pub fn effective(pod: &SecurityContext, container: &SecurityContext) -> SecurityContext {
        SecurityContext {
            run_as_user: container.run_as_user.or(pod.run_as_user),
            run_as_group: container.run_as_group.or(pod.run_as_group),
            run_as_non_root: container.run_as_non_root.or(pod.run_as_non_root),
            supplemental_groups: pod.supplemental_groups.clone(),
            fs_group: pod.fs_group,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_merges_like_the_kubelet() {
        let pod = SecurityContext::from_value(Some(&json!({
            "runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000], "fsGroup": 2000
        })))
        .unwrap();
        let c =
            SecurityContext::from_value(Some(&json!({"runAsUser": 65534, "runAsNonRoot": true})))
                .unwrap();
        let e = SecurityContext::effective(&pod, &c);
        assert_eq!(e.run_as_user, Some(65534));
        assert_eq!(e.run_as_group, Some(3000));
        assert_eq!(e.run_as_non_root, Some(true));
        assert_eq!(e.supplemental_groups, Some(vec![4000]));
        assert_eq!(e.fs_group, Some(2000));
        assert_eq!(
            SecurityContext::from_value(Some(&json!({"runAsUser": "root"})))
                .unwrap_err()
                .0,
            "runAsUser"
        );
        assert_eq!(
            SecurityContext::from_value(Some(&json!({"supplementalGroups": [1, "x"]})))
                .unwrap_err()
                .0,
            "supplementalGroups[1]"
        );
        assert_eq!(
            SecurityContext::from_value(None).unwrap(),
            SecurityContext::default()
        );
    }
}

//! Container logs in the kubelet's CRI format (helper fills this in).

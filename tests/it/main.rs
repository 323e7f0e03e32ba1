//! One integration binary: the real daemon, driven through files, the CLI and the socket.

mod support;

mod api;
mod apply;
mod bare_pods;
mod cli;
mod crash;
mod cronjobs;
mod docs_examples;
mod durability;
mod examples;
mod files;
mod images;
mod lifecycle;
mod logs;
mod pod_failure_policy;
mod pods;
mod retention;
mod service;
mod supervision;

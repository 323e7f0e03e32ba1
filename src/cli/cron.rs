//! `jobvisor cron next SCHEDULE [--tz ZONE] [-n N] [--from RFC3339]`: the next fire times
//! of a CronJob schedule, offline, as Kubernetes computes them ([`crate::schedule`]),
//! one RFC 3339 timestamp a line in the zone's offset (as `systemd-analyze calendar
//! --iterations` lists them).
//!
//! A bad schedule or zone is reported with the line manifest validation gives for it
//! (`spec.schedule: Invalid value: …`), exit 1. A schedule that never fires prints nothing
//! and says so on stderr, exit 0: the API server accepts it too.

use clap::Subcommand;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{Ctx, Reported};
use crate::manifest::{invalid_value, required_value};
use crate::schedule::{self, Schedule};

const SCHEDULE_PATH: &str = "spec.schedule";
const TIME_ZONE_PATH: &str = "spec.timeZone";

#[derive(Debug, clap::Args)]
pub struct CronArgs {
    #[command(subcommand)]
    pub command: CronCommand,
}

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Print the next fire times of a schedule, as a CronJob with it would run.
    Next(NextArgs),
}

#[derive(Debug, clap::Args)]
pub struct NextArgs {
    /// The schedule, as in a CronJob's spec.schedule (quote it: "*/15 * * * *").
    #[arg(value_name = "SCHEDULE")]
    pub schedule: String,
    /// The time zone, as in spec.timeZone (default: the local zone, which a CronJob
    /// without timeZone uses).
    #[arg(long = "tz", value_name = "ZONE")]
    pub tz: Option<String>,
    /// How many fire times to print.
    #[arg(
        short = 'n',
        long = "iterations",
        value_name = "N",
        default_value_t = 5
    )]
    pub count: usize,
    /// Start strictly after this instant, RFC 3339 (2024-03-09T12:00:00-05:00); default now.
    #[arg(long, value_name = "RFC3339")]
    pub from: Option<Timestamp>,
}

pub fn run(ctx: &mut Ctx<'_>, args: CronArgs) -> anyhow::Result<()> {
    match args.command {
        CronCommand::Next(args) => next(ctx, args),
    }
}

fn next(ctx: &mut Ctx<'_>, args: NextArgs) -> anyhow::Result<()> {
    // Both checked, both reported, as validation reports every error of a manifest.
    let parsed = Schedule::parse(&args.schedule).map_err(|err| {
        if err.is_empty_schedule() {
            required_value(SCHEDULE_PATH, "")
        } else {
            invalid_value(SCHEDULE_PATH, &args.schedule, &err.to_string())
        }
    });
    let zone = match &args.tz {
        Some(name) => {
            schedule::time_zone(name).map_err(|why| invalid_value(TIME_ZONE_PATH, name, &why))
        }
        None => Ok(schedule::local_zone()),
    };
    let (schedule, zone) = match (parsed, zone) {
        (Ok(schedule), Ok(zone)) => (schedule, zone),
        (parsed, zone) => {
            for error in [parsed.err(), zone.err()].into_iter().flatten() {
                ctx.eprint(&format!("error: {error}"))?;
            }
            return Err(Reported.into());
        }
    };
    let from = args.from.unwrap_or_else(|| ctx.clock.now());
    let mut out = String::new();
    let mut at = from;
    for printed in 0..args.count {
        match schedule.next_after(at, &zone) {
            Some(t) => {
                out.push_str(&show(t, &zone));
                out.push('\n');
                at = t;
            }
            None => {
                ctx.print(&out)?;
                out.clear();
                let why = if printed == 0 {
                    format!(
                        "schedule \"{}\" never fires: nothing matches within the 5 years after {} \
                         that Kubernetes searches",
                        schedule.text(),
                        // Whole seconds: the search starts at the next one anyway.
                        show(
                            Timestamp::from_second(from.as_second()).unwrap_or(from),
                            &zone
                        )
                    )
                } else {
                    format!(
                        "no fire time within the 5 years after {} that Kubernetes searches",
                        show(at, &zone)
                    )
                };
                ctx.eprint(&why)?;
                break;
            }
        }
    }
    ctx.print(&out)?;
    Ok(())
}

/// RFC 3339 in the zone's offset at that instant.
fn show(t: Timestamp, zone: &TimeZone) -> String {
    t.display_with_offset(zone.to_offset(t)).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cli::testing::{NOW, serve};

    fn args(schedule: &str, tz: Option<&str>, count: usize, from: Option<&str>) -> CronArgs {
        CronArgs {
            command: CronCommand::Next(NextArgs {
                schedule: schedule.into(),
                tz: tz.map(String::from),
                count,
                from: from.map(|f| f.parse().unwrap()),
            }),
        }
    }

    #[tokio::test]
    async fn prints_the_next_times_from_now_in_the_zone() {
        let mut h = serve(axum::Router::new());
        assert_eq!(NOW, "2024-01-15T10:00:00Z");
        run(
            &mut h.ctx(),
            args("0 9 * * 1-5", Some("Europe/Berlin"), 3, None),
        )
        .unwrap();
        assert_eq!(
            h.out(),
            "2024-01-16T09:00:00+01:00\n2024-01-17T09:00:00+01:00\n2024-01-18T09:00:00+01:00\n"
        );
        assert_eq!(h.err(), "");
    }

    #[tokio::test]
    async fn both_bad_fields_are_reported_as_validation_reports_them() {
        let mut h = serve(axum::Router::new());
        let err = run(
            &mut h.ctx(),
            args("0 0 * * 8", Some("Mars/Olympus"), 5, None),
        )
        .unwrap_err();
        assert!(err.downcast_ref::<Reported>().is_some());
        assert_eq!(
            h.err(),
            "error: spec.schedule: Invalid value: \"0 0 * * 8\": day of week: end of range (8) above maximum (6)\n\
             error: spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus\n"
        );
        assert_eq!(h.out(), "");

        let mut h = serve(axum::Router::new());
        run(&mut h.ctx(), args("", Some("UTC"), 5, None)).unwrap_err();
        assert_eq!(h.err(), "error: spec.schedule: Required value\n");
    }

    #[tokio::test]
    async fn never_and_fewer_are_said_on_stderr() {
        let mut h = serve(axum::Router::new());
        run(&mut h.ctx(), args("0 0 30 2 *", Some("UTC"), 5, None)).unwrap();
        assert_eq!(h.out(), "");
        assert_eq!(
            h.err(),
            "schedule \"0 0 30 2 *\" never fires: nothing matches within the 5 years after \
             2024-01-15T10:00:00+00:00 that Kubernetes searches\n"
        );

        let mut h = serve(axum::Router::new());
        let from = Some("2090-01-01T00:00:00Z");
        run(&mut h.ctx(), args("0 0 29 2 *", Some("UTC"), 5, from)).unwrap();
        assert_eq!(
            h.out(),
            "2092-02-29T00:00:00+00:00\n2096-02-29T00:00:00+00:00\n"
        );
        assert_eq!(
            h.err(),
            "no fire time within the 5 years after 2096-02-29T00:00:00+00:00 that Kubernetes searches\n"
        );
    }
}

//! `--vs ENDPOINTS`: the same workload against two endpoint sets, alternating A B A B so that
//! drift (page cache, other load on the machine, thermal state) hits both sides alike, then
//! each figure for both and the ratio A/B.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::args::{CommonArgs, Workload};
use super::plot;
use super::recorder::Outcome;
use super::report::Report;
use super::run_once;

/// Samples of errors and violations kept when runs are merged.
const SAMPLES_LIMIT: usize = 5;

/// Runs `workload` `--vs-rounds` times against each side, alternating, and prints both.
pub async fn run(
    workload: &dyn Workload,
    common: &CommonArgs,
    endpoints_b: &[String],
) -> Result<(), String> {
    let endpoints_a = &common.connection.endpoints;
    let mut runs_a = Vec::new();
    let mut runs_b = Vec::new();
    for round in 1..=common.vs_rounds {
        for (side, endpoints, runs) in [
            ("A", endpoints_a.as_slice(), &mut runs_a),
            ("B", endpoints_b, &mut runs_b),
        ] {
            eprintln!(
                "{} round {round}/{}: {side} = {}",
                workload.name(),
                common.vs_rounds,
                endpoints.join(",")
            );
            let report = run_once(workload, common, endpoints).await?;
            runs.push(report.outcome);
        }
    }
    let report_a = Report::new(workload.name(), endpoints_a, &merge(&runs_a));
    let report_b = Report::new(workload.name(), endpoints_b, &merge(&runs_b));
    if let Some(path) = &common.plot {
        plot::write_svg(path, &[&report_a, &report_b])?;
    }
    print!("{}", report_a.table());
    print!("{}", report_b.table());
    print!("{}", ratio_table(&report_a, &report_b));
    if common.json {
        println!("{}", versus_json(&report_a, &report_b));
    }
    let violations = report_a.violations + report_b.violations;
    if violations > 0 {
        return Err(format!("{violations} consistency violations"));
    }
    Ok(())
}

/// Merges several runs of one workload on one side: counts and times add up, histograms
/// merge, workload figures average; the timeline is the first run's.
pub fn merge(runs: &[Outcome]) -> Outcome {
    let mut merged = runs[0].clone();
    for run in &runs[1..] {
        merged
            .latency
            .add(&run.latency)
            .expect("latency histograms share bounds");
        merged.ops += run.ops;
        merged.errors += run.errors;
        merged.elapsed += run.elapsed;
        merged.violations += run.violations;
        for (sink, source) in [
            (&mut merged.error_samples, &run.error_samples),
            (&mut merged.violation_samples, &run.violation_samples),
        ] {
            let room = SAMPLES_LIMIT.saturating_sub(sink.len());
            sink.extend(source.iter().take(room).cloned());
        }
    }
    let runs_count = runs.len() as f64;
    for (index, (name, value)) in merged.extra.iter_mut().enumerate() {
        let sum: f64 = runs
            .iter()
            .filter_map(|run| run.extra.get(index).filter(|(n, _)| n == name))
            .map(|(_, v)| *v)
            .sum();
        *value = sum / runs_count;
    }
    merged
}

/// A/B of one figure; `None` when B is zero.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// The side-by-side table of every figure and the ratio A/B.
pub fn ratio_table(a: &Report, b: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: A = {}, B = {}",
        a.workload,
        a.endpoints.join(","),
        b.endpoints.join(",")
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>14} {:>14} {:>8}",
        "figure", "A", "B", "A/B"
    );
    for ((name, value_a), (_, value_b)) in a.figures().into_iter().zip(b.figures()) {
        let ratio = ratio(value_a, value_b).map_or("-".to_string(), |r| format!("{r:.2}"));
        let _ = writeln!(
            out,
            "  {name:<28} {value_a:>14.3} {value_b:>14.3} {ratio:>8}"
        );
    }
    out
}

/// A's JSON object with B's under "vs" and the ratios A/B under "ratio".
pub fn versus_json(a: &Report, b: &Report) -> Value {
    let mut object = match a.json_value() {
        Value::Object(object) => object,
        _ => unreachable!("a report is a JSON object"),
    };
    let mut ratios = Map::new();
    for ((name, value_a), (_, value_b)) in a.figures().into_iter().zip(b.figures()) {
        if let Some(r) = ratio(value_a, value_b) {
            ratios.insert(name, Value::from((r * 1000.0).round() / 1000.0));
        }
    }
    object.insert("vs".into(), b.json_value());
    object.insert("ratio".into(), Value::Object(ratios));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::recorder::Recorder;
    use std::time::Duration;

    fn outcome(ops: u64, millis: u64, seconds: u64) -> Outcome {
        let recorder = Recorder::start();
        for _ in 0..ops {
            recorder.success(Duration::from_millis(millis));
        }
        recorder
            .finish(Duration::from_secs(seconds))
            .with_extra("events", ops as f64)
    }

    // Goal: merged runs add counts and times (so qps is total ops / total time) and average
    // the workload figures.
    #[test]
    fn merge_adds_counts_and_averages_extras() {
        let merged = merge(&[outcome(100, 1, 1), outcome(300, 3, 3)]);
        assert_eq!(merged.ops, 400);
        assert_eq!(merged.latency.len(), 400);
        assert_eq!(merged.elapsed, Duration::from_secs(4));
        assert_eq!(merged.extra, vec![("events".to_string(), 200.0)]);
    }

    // Goal: the ratio is A/B for every figure, and the JSON keeps A's figures at top level.
    #[test]
    fn ratio_is_a_over_b() {
        let a = Report::new("put", &["a:1".into()], &outcome(300, 1, 1));
        let b = Report::new("put", &["b:1".into()], &outcome(100, 4, 1));
        let json = versus_json(&a, &b);
        assert_eq!(json["qps"], 300);
        assert_eq!(json["vs"]["qps"], 100);
        assert_eq!(json["ratio"]["qps"], 3.0);
        assert!((json["ratio"]["p50_ms"].as_f64().unwrap() - 0.25).abs() < 0.01);
        assert!(json["ratio"].get("errors").is_none(), "0/0 has no ratio");
        let table = ratio_table(&a, &b);
        assert!(table.contains("qps"));
        assert!(table
            .lines()
            .any(|l| l.contains("qps") && l.ends_with("3.00")));
    }
}

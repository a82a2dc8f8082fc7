//! The progress bar on stderr while a workload runs (indicatif; hidden when stderr is no tty).
//!
//! A ticker task refreshes it a few times a second from the recorder's counters, so the hot
//! path of a request never touches the bar.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::Stop;
use super::recorder::Recorder;

/// How often the bar is redrawn.
const TICK_INTERVAL: Duration = Duration::from_millis(200);

/// A progress bar that follows a recorder until dropped or finished.
pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts a bar for a run named `label` that stops as `stop` says.
    pub fn start(label: &str, stop: Stop, recorder: Arc<Recorder>) -> Self {
        let (length, template) = match stop {
            Stop::AfterRequests(total) => (total, "{prefix} [{bar:30}] {pos}/{len} {msg}"),
            Stop::AfterTime(duration) => (
                duration.as_millis() as u64,
                "{prefix} [{bar:30}] {elapsed}/{duration} {msg}",
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(template)
            .expect("static template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        let ticker_bar = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK_INTERVAL);
            loop {
                interval.tick().await;
                let ops = recorder.ops();
                let elapsed = recorder.started().elapsed();
                let position = match stop {
                    Stop::AfterRequests(_) => ops,
                    Stop::AfterTime(_) => elapsed.as_millis() as u64,
                };
                ticker_bar.set_position(position.min(length));
                let rate = ops as f64 / elapsed.as_secs_f64().max(1e-3);
                ticker_bar.set_message(format!("{ops} ok, {rate:.0}/s"));
            }
        });
        Progress { bar, ticker }
    }

    /// Stops the ticker and clears the bar.
    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
